import { vi } from 'vitest'

// A fetch stand-in for component tests: answers by URL prefix and records every call.
export function stubFetch(routes) {
  const calls = []
  const fetch = vi.fn(async (url, options = {}) => {
    calls.push({ url, options })
    const match = Object.keys(routes).find((prefix) => url.startsWith(prefix))
    const answer = match ? routes[match] : { status: 404, body: { code: 'not_found' } }
    const { status = 200, body } = typeof answer === 'function' ? answer(url, options) : answer
    return { ok: status < 400, status, json: async () => body }
  })
  vi.stubGlobal('fetch', fetch)
  return calls
}

export const flush = () => new Promise((resolve) => setTimeout(resolve, 0))
