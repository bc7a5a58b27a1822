import { describe, expect, it } from 'vitest'
import { secondsUntilReply, shortId } from '../format.js'

const at = (iso) => Date.parse(iso)

describe('secondsUntilReply', () => {
  const messages = [
    { type: 'INBOUND', pending: false, received_at: '2026-01-01T00:00:00Z' },
    { type: 'INBOUND', pending: true, received_at: '2026-01-01T00:00:10Z' },
    { type: 'INBOUND', pending: true, received_at: '2026-01-01T00:00:12Z' },
    { type: 'OUTBOUND', pending: false, received_at: '2026-01-01T00:00:20Z' },
  ]

  it('counts the window from the newest pending arrival', () => {
    expect(secondsUntilReply(messages, 5, at('2026-01-01T00:00:13Z'))).toBe(4)
  })

  it('never goes below zero', () => {
    expect(secondsUntilReply(messages, 5, at('2026-01-01T00:01:00Z'))).toBe(0)
  })

  it('comes sooner when the oldest pending message reaches the wait cap', () => {
    const caps = { maxWaitSeconds: 3, maxMessages: 50 }
    expect(secondsUntilReply(messages, 5, at('2026-01-01T00:00:12Z'), caps)).toBe(1)
  })

  it('is zero once the pending messages fill the group', () => {
    expect(secondsUntilReply(messages, 5, at('2026-01-01T00:00:12Z'), { maxMessages: 2 })).toBe(0)
  })

  it('is null when nothing waits', () => {
    expect(secondsUntilReply(messages.slice(0, 1), 5)).toBeNull()
  })
})

it('shortId keeps the first block of a uuid', () => {
  expect(shortId('6a41b347-8d80-4ce9-84ba-7af66f369f6a')).toBe('6a41b347')
})
