import { describe, expect, it } from 'vitest'
import { messageTimeline, sinceArrival } from '../timeline.js'

const first = { id: 'a', type: 'INBOUND', received_at: '2026-01-01T00:00:00Z', pending: false, reply_id: 'r', handled_by: 'bot' }
const second = { id: 'b', type: 'INBOUND', received_at: '2026-01-01T00:00:02Z', pending: false, reply_id: 'r', handled_by: 'bot' }
const reply = {
  id: 'r',
  type: 'OUTBOUND',
  content: 'Mensagens recebidas:\na\nb\n',
  timestamp: '2026-01-01T00:00:07.400Z',
  due_at: '2026-01-01T00:00:07Z',
  send_reason: 'quiet',
  delivery: {
    state: 'delivered',
    attempts: 2,
    log: [
      { number: 2, started_at: '2026-01-01T00:00:10Z', status: 200, outcome: 'delivered' },
      { number: 1, started_at: '2026-01-01T00:00:07.500Z', status: 503, outcome: 'retry' },
    ],
  },
}

describe('messageTimeline', () => {
  it('follows a message from its arrival to its reply and each delivery attempt, oldest first', () => {
    const steps = messageTimeline(first, [first, second, reply])

    expect(steps.map((step) => step.kind)).toEqual(['arrived', 'group', 'due', 'replied', 'attempt', 'attempt'])
    expect(steps[1].label).toBe('entrou num grupo de 2 mensagens')
    expect(steps[2]).toMatchObject({ at: '2026-01-01T00:00:07Z', label: 'o grupo venceu (após o silêncio)' })
    expect(steps[4].label).toBe('entrega #1: 503 (retry)')
    expect(steps[5].label).toBe('entrega #2: 200 (delivered)')
  })

  it('says a message waits while its group has not fallen due', () => {
    const waiting = { ...first, pending: true, reply_id: null, handled_by: null }

    expect(messageTimeline(waiting, [waiting]).map((step) => step.kind)).toEqual(['arrived', 'waiting'])
  })

  it('counts the group from the reply, whatever page its other messages are on', () => {
    expect(messageTimeline(first, [first, reply])[1].label).toBe('entrou num grupo de 2 mensagens')
  })

  it('says where a delivery stands when no attempt is logged yet', () => {
    const waiting = { ...reply, delivery: { state: 'pending', attempts: 0, log: [] } }

    expect(messageTimeline(first, [first, waiting]).at(-1)).toMatchObject({ kind: 'delivery', label: 'entrega: pending' })
  })

  it('says a person has a message taken over', () => {
    const taken = { ...first, reply_id: null, handled_by: 'agent' }

    expect(messageTimeline(taken, [taken]).at(-1).kind).toBe('agent')
  })

  it('measures each step from the arrival', () => {
    expect(sinceArrival(second, reply.due_at)).toBe('+5.0 s')
    expect(sinceArrival(second, null)).toBe('')
  })
})
