export function formatTime(iso) {
  if (!iso) return ''
  return new Date(iso).toLocaleTimeString('pt-BR', { hour: '2-digit', minute: '2-digit', second: '2-digit' })
}

export function formatDateTime(iso) {
  if (!iso) return ''
  return new Date(iso).toLocaleString('pt-BR', { dateStyle: 'short', timeStyle: 'medium' })
}

export const shortId = (id) => id.slice(0, 8)

// Seconds until the pending group is answered: the window counts from the newest pending arrival, unless a cap
// of /api/config/ comes first (the oldest pending message has waited maxWaitSeconds, or maxMessages are waiting).
export function secondsUntilReply(messages, windowSeconds, now = Date.now(), { maxWaitSeconds, maxMessages } = {}) {
  const pending = messages.filter((m) => m.type === 'INBOUND' && m.pending)
  if (!pending.length) return null
  if (maxMessages && pending.length >= maxMessages) return 0
  const arrivals = pending.map((m) => Date.parse(m.received_at))
  let due = Math.max(...arrivals) + windowSeconds * 1000
  if (maxWaitSeconds) due = Math.min(due, Math.min(...arrivals) + maxWaitSeconds * 1000)
  return Math.max(0, (due - now) / 1000)
}
