import { mount } from '@vue/test-utils'
import { afterEach, expect, it, vi } from 'vitest'
import ConversationView from '../components/ConversationView.vue'
import { flush, stubFetch } from './helpers.js'

const ID = '6a41b347-8d80-4ce9-84ba-7af66f369f6a'

function conversation(overrides = {}) {
  const now = new Date().toISOString()
  return {
    id: ID,
    status: 'OPEN',
    created_at: now,
    updated_at: now,
    closed_at: null,
    messages: [
      { id: 'm1', type: 'INBOUND', content: 'Oi', timestamp: now, received_at: now, pending: false, reply_id: 'r1' },
      { id: 'r1', type: 'OUTBOUND', content: 'Mensagens recebidas:\nm1\n', timestamp: now, received_at: now, pending: false, reply_id: null },
      { id: 'm2', type: 'INBOUND', content: 'Tudo bem?', timestamp: now, received_at: now, pending: true, reply_id: null },
    ],
    ...overrides,
  }
}

afterEach(() => vi.unstubAllGlobals())

it('shows inbound and outbound messages as bubbles on their sides, pending ones marked', async () => {
  stubFetch({ [`/conversations/${ID}/`]: { body: conversation() } })
  const wrapper = mount(ConversationView, { props: { id: ID, windowSeconds: 5 } })
  await flush()

  const bubbles = wrapper.findAll('li.bubble')
  expect(bubbles.map((b) => b.attributes('data-type'))).toEqual(['INBOUND', 'OUTBOUND', 'INBOUND'])
  expect(bubbles[0].classes()).toContain('bubble-in')
  expect(bubbles[1].classes()).toContain('bubble-out')
  expect(bubbles[1].text()).toContain('Mensagens recebidas:')
  expect(bubbles[2].classes()).toContain('bubble-pending')
  expect(bubbles[2].text()).toContain('aguardando resposta')
  expect(wrapper.find('.waiting').text()).toMatch(/Resposta em ~[0-9.]+ s/)
  wrapper.unmount()
})

it('shows the status and the close time of a closed conversation', async () => {
  const closedAt = '2025-06-04T14:25:00Z'
  stubFetch({
    [`/conversations/${ID}/`]: { body: conversation({ status: 'CLOSED', closed_at: closedAt, messages: [] }) },
  })
  const wrapper = mount(ConversationView, { props: { id: ID } })
  await flush()

  expect(wrapper.find('.badge').text()).toBe('Fechada')
  expect(wrapper.find('.closed-at').exists()).toBe(true)
  expect(wrapper.find('.waiting').exists()).toBe(false)
  wrapper.unmount()
})

it('says when the conversation does not exist yet', async () => {
  stubFetch({})
  const wrapper = mount(ConversationView, { props: { id: ID } })
  await flush()

  expect(wrapper.text()).toContain('não encontrada')
  wrapper.unmount()
})

it('loads older messages on demand, before the newest page, until there are none', async () => {
  const now = new Date().toISOString()
  const message = (id) => ({ id, type: 'INBOUND', content: id, timestamp: now, received_at: now, pending: false, reply_id: null })
  const newest = conversation({ messages: [message('m3'), message('m4')], older: `/conversations/${ID}/?before=c3` })
  stubFetch({
    [`/conversations/${ID}/?before=c3`]: { body: { ...newest, messages: [message('m2')], older: `/conversations/${ID}/?before=c2` } },
    [`/conversations/${ID}/?before=c2`]: { body: { ...newest, messages: [message('m1')], older: null } },
    [`/conversations/${ID}/`]: { body: newest },
  })
  const wrapper = mount(ConversationView, { props: { id: ID, windowSeconds: 5 } })
  await flush()
  const ids = () => wrapper.findAll('li.bubble').map((b) => b.text())

  expect(wrapper.findAll('li.bubble')).toHaveLength(2)
  await wrapper.find('button.load-older').trigger('click')
  await flush()
  expect(ids()[0]).toContain('m2')
  expect(wrapper.findAll('li.bubble')).toHaveLength(3)
  await wrapper.find('button.load-older').trigger('click')
  await flush()
  expect(wrapper.findAll('li.bubble')).toHaveLength(4)
  expect(ids().map((text) => text.match(/m\d/)[0])).toEqual(['m1', 'm2', 'm3', 'm4'])
  expect(wrapper.find('button.load-older').exists()).toBe(false)
  wrapper.unmount()
})

it('says why each reply was sent', async () => {
  const now = new Date().toISOString()
  const reply = (id, reason) => ({ id, type: 'OUTBOUND', content: 'Mensagens recebidas:\n', timestamp: now, received_at: now, pending: false, reply_id: null, send_reason: reason })
  stubFetch({ [`/conversations/${ID}/`]: { body: conversation({ messages: [reply('r1', 'max_wait'), reply('r2', 'quiet')] }) } })
  const wrapper = mount(ConversationView, { props: { id: ID, windowSeconds: 5 } })
  await flush()

  const tags = wrapper.findAll('.reason-tag')
  expect(tags.map((t) => t.attributes('data-reason'))).toEqual(['max_wait', 'quiet'])
  expect(tags[0].text()).toBe('espera máxima atingida')
  wrapper.unmount()
})

it('shows each reply\'s delivery state, with attempts and the last error', async () => {
  const now = new Date().toISOString()
  const reply = (id, delivery) => ({ id, type: 'OUTBOUND', content: 'Mensagens recebidas:\n', timestamp: now, received_at: now, pending: false, reply_id: null, send_reason: 'quiet', delivery })
  const messages = [
    reply('r1', { state: 'delivered', attempts: 1, last_error: '', delivered_at: now }),
    reply('r2', { state: 'pending', attempts: 3, last_error: 'HTTP 503: busy', delivered_at: null }),
    reply('r3', null),
  ]
  stubFetch({ [`/conversations/${ID}/`]: { body: conversation({ messages }) } })
  const wrapper = mount(ConversationView, { props: { id: ID, windowSeconds: 5 } })
  await flush()

  const tags = wrapper.findAll('.delivery-tag')
  expect(tags.map((t) => t.attributes('data-delivery'))).toEqual(['delivered', 'pending'])
  expect(tags[0].text()).toBe('entregue')
  expect(tags[1].text()).toBe('entrega pendente (3×)')
  expect(tags[1].attributes('title')).toBe('3 tentativas; último erro: HTTP 503: busy')
  wrapper.unmount()
})

it('shows that a person has the conversation, until when, and resumes the bot on request', async () => {
  const until = new Date(Date.now() + 600_000).toISOString()
  const now = new Date().toISOString()
  const paused = conversation({
    bot_paused_until: until,
    messages: [
      { id: 'm1', type: 'INBOUND', author: 'user', content: 'Oi', received_at: now, pending: false, handled_by: 'agent' },
      { id: 'a1', type: 'OUTBOUND', author: 'agent', content: 'Sou a Ana', received_at: now, pending: false },
    ],
  })
  let resumed = false
  const calls = stubFetch({
    [`/conversations/${ID}/`]: () => ({ body: resumed ? { ...paused, bot_paused_until: null } : paused }),
    '/webhook/': () => {
      resumed = true
      return { status: 200, body: {} }
    },
  })
  const wrapper = mount(ConversationView, { props: { id: ID, canSend: true } })
  await flush()

  expect(wrapper.find('.takeover').text()).toContain('Uma pessoa está atendendo')
  expect(wrapper.find('.takeover time').attributes('datetime')).toBe(until)
  const bubbles = wrapper.findAll('li.bubble')
  expect(bubbles[1].classes()).toContain('bubble-agent')
  expect(bubbles[1].text()).toContain('Atendente')
  expect(bubbles[0].text()).toContain('com o atendente')
  expect(wrapper.find('.waiting').exists()).toBe(false)

  await wrapper.find('button.resume').trigger('click')
  await flush()
  await flush()

  const posted = JSON.parse(calls.find((c) => c.url === '/webhook/').options.body)
  expect(posted).toMatchObject({ type: 'RESUME_BOT', data: { id: ID } })
  expect(wrapper.find('.takeover').exists()).toBe(false)
  wrapper.unmount()
})

it('offers no resume button to a visitor who may not send events', async () => {
  const until = new Date(Date.now() + 600_000).toISOString()
  stubFetch({ [`/conversations/${ID}/`]: { body: conversation({ bot_paused_until: until, messages: [] }) } })
  const wrapper = mount(ConversationView, { props: { id: ID, canSend: false } })
  await flush()

  expect(wrapper.find('.takeover').exists()).toBe(true)
  expect(wrapper.find('button.resume').exists()).toBe(false)
  wrapper.unmount()
})

it('counts down with the conversation’s own window', async () => {
  const now = new Date().toISOString()
  const ownRules = conversation({
    reply_rules: { window_seconds: 30, max_wait_seconds: null, max_messages: null },
    messages: [{ id: 'm1', type: 'INBOUND', content: 'Oi', received_at: now, pending: true, reply_id: null }],
  })
  stubFetch({ [`/conversations/${ID}/`]: { body: ownRules } })
  const wrapper = mount(ConversationView, { props: { id: ID, windowSeconds: 5 } })
  await flush()

  const seconds = Number(wrapper.find('.waiting').text().match(/~([0-9.]+) s/)[1])
  expect(seconds).toBeGreaterThan(25)
  expect(wrapper.find('.rules-tag').text()).toContain('janela 30 s')
  wrapper.unmount()
})

it('lists a reply’s delivery attempts', async () => {
  const now = new Date().toISOString()
  const delivery = {
    state: 'delivered',
    attempts: 2,
    last_error: '',
    delivered_at: now,
    log: [
      { number: 2, started_at: now, duration_ms: 12.4, status: 200, outcome: 'delivered', error: '' },
      { number: 1, started_at: now, duration_ms: 1000.2, status: null, outcome: 'retry', error: 'no answer within 1 s' },
    ],
  }
  const body = conversation({
    messages: [{ id: 'r1', type: 'OUTBOUND', author: 'bot', content: 'x', received_at: now, pending: false, delivery }],
  })
  stubFetch({ [`/conversations/${ID}/`]: { body } })
  const wrapper = mount(ConversationView, { props: { id: ID } })
  await flush()

  const attempts = wrapper.findAll('.attempt-log li')
  expect(attempts.map((a) => a.attributes('data-outcome'))).toEqual(['delivered', 'retry'])
  expect(attempts[1].text()).toContain('sem resposta')
  expect(attempts[1].text()).toContain('no answer within 1 s')
  wrapper.unmount()
})
