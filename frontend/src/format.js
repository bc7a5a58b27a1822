export function formatTime(iso) {
  if (!iso) return ''
  return new Date(iso).toLocaleTimeString('pt-BR', { hour: '2-digit', minute: '2-digit', second: '2-digit' })
}

export function formatDateTime(iso) {
  if (!iso) return ''
  return new Date(iso).toLocaleString('pt-BR', { dateStyle: 'short', timeStyle: 'medium' })
}

export const shortId = (id) => id.slice(0, 8)

// Seconds until the pending group is answered: the window counts from the newest pending arrival.
export function secondsUntilReply(messages, windowSeconds, now = Date.now()) {
  const pending = messages.filter((m) => m.type === 'INBOUND' && m.pending)
  if (!pending.length) return null
  const newest = Math.max(...pending.map((m) => Date.parse(m.received_at)))
  return Math.max(0, (newest + windowSeconds * 1000 - now) / 1000)
}
