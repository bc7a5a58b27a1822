// The service's HTTP API, same origin. Every function resolves to parsed JSON or throws an Error.

async function getJson(url) {
  const response = await fetch(url, { headers: { Accept: 'application/json' } })
  if (!response.ok) throw new Error(`${response.status} ${url}`)
  return response.json()
}

// The first page of the list, or the page a `next`/`previous` link of an earlier one names (same origin; the
// link keeps the filters it was given).
export function listConversations({ status = '', q = '', link = null } = {}) {
  // Only the path and query of the link: the server may name itself by another scheme or host behind a proxy.
  if (link) {
    const { pathname, search } = new URL(link, window.location.href)
    return getJson(pathname + search)
  }
  const params = new URLSearchParams({ page_size: '20' })
  if (status) params.set('status', status)
  if (q) params.set('q', q)
  return getJson(`/conversations/?${params}`)
}

export const getConversation = (id) => getJson(`/conversations/${encodeURIComponent(id)}/`)
// A page of older messages: `older` of a conversation's detail is its same-origin link.
export const getOlderMessages = (link) => getJson(link)
export const getConfig = () => getJson('/api/config/')

export const getSession = () => getJson('/api/session/')

function csrfToken() {
  return document.cookie.match(/(?:^|;\s*)csrftoken=([^;]+)/)?.[1] ?? ''
}

async function answer(response) {
  let body
  try {
    body = await response.json()
  } catch {
    body = null
  }
  return { status: response.status, body }
}

// Sends one webhook event and resolves to what came back, errors included: the console shows them all. With
// `signed`, the server builds and signs the event for a staff session (the secret never reaches the browser).
export async function sendEvent(type, data, { signed = false } = {}) {
  let body = JSON.stringify({ type, timestamp: new Date().toISOString(), data })
  const headers = { 'Content-Type': 'application/json' }
  if (signed) {
    const built = await answer(
      await fetch('/api/console/events/', {
        method: 'POST',
        headers: { 'Content-Type': 'application/json', 'X-CSRFToken': csrfToken() },
        body: JSON.stringify({ type, data }),
      }),
    )
    if (built.status !== 200) return built
    body = built.body.body
    if (built.body.signature) headers['X-Hub-Signature-256'] = built.body.signature
  }
  return answer(await fetch('/webhook/', { method: 'POST', headers, body }))
}

export function newUuid() {
  if (globalThis.crypto?.randomUUID) return globalThis.crypto.randomUUID()
  const bytes = globalThis.crypto.getRandomValues(new Uint8Array(16))
  bytes[6] = (bytes[6] & 0x0f) | 0x40
  bytes[8] = (bytes[8] & 0x3f) | 0x80
  const hex = [...bytes].map((b) => b.toString(16).padStart(2, '0')).join('')
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-${hex.slice(20)}`
}
