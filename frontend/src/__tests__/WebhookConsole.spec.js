import { mount } from '@vue/test-utils'
import { afterEach, expect, it, vi } from 'vitest'
import WebhookConsole from '../components/WebhookConsole.vue'
import { flush, stubFetch } from './helpers.js'

afterEach(() => vi.unstubAllGlobals())

const ID = '6a41b347-8d80-4ce9-84ba-7af66f369f6a'

function postedBody(calls) {
  return JSON.parse(calls.at(-1).options.body)
}

it('sends the three events for the chosen conversation and shows each HTTP answer', async () => {
  const calls = stubFetch({
    '/webhook/': (url, options) => {
      const type = JSON.parse(options.body).type
      return type === 'CLOSE_CONVERSATION'
        ? { status: 400, body: { code: 'conversation_not_found' } }
        : { status: type === 'NEW_MESSAGE' ? 202 : 201, body: { ok: true } }
    },
  })
  const wrapper = mount(WebhookConsole, { props: { conversationId: ID } })

  await wrapper.find('[data-event=NEW_CONVERSATION]').trigger('click')
  await flush()
  expect(postedBody(calls)).toMatchObject({ type: 'NEW_CONVERSATION', data: { id: ID } })

  await wrapper.find('textarea[name=content]').setValue('Quero alugar')
  await wrapper.find('form').trigger('submit')
  await flush()
  const message = postedBody(calls)
  expect(message.type).toBe('NEW_MESSAGE')
  expect(message.data).toMatchObject({ content: 'Quero alugar', conversation_id: ID })
  expect(message.data.id).toMatch(/^[0-9a-f-]{36}$/)
  expect(Number.isNaN(Date.parse(message.timestamp))).toBe(false)

  await wrapper.find('[data-event=CLOSE_CONVERSATION]').trigger('click')
  await flush()
  const statuses = wrapper.findAll('.http-status').map((s) => s.text())
  expect(statuses).toEqual(['HTTP 400', 'HTTP 202', 'HTTP 201'])
  expect(wrapper.emitted('sent')).toHaveLength(3)
})

it('makes a fresh conversation id on request', async () => {
  stubFetch({})
  const wrapper = mount(WebhookConsole, { props: { conversationId: ID } })

  await wrapper.find('button[type=button]').trigger('click')

  const value = wrapper.find('input[name=conversation_id]').element.value
  expect(value).toMatch(/^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/)
  expect(value).not.toBe(ID)
})

it('has a staff session’s events built and signed by the server, and sends exactly that body', async () => {
  const signedBody = JSON.stringify({ type: 'NEW_CONVERSATION', timestamp: '2025-06-04T14:20:00Z', data: { id: ID } })
  document.cookie = 'csrftoken=tok123'
  const calls = stubFetch({
    '/api/console/events/': { body: { body: signedBody, signature: 'sha256=abc' } },
    '/webhook/': { status: 201, body: { id: ID } },
  })
  const wrapper = mount(WebhookConsole, { props: { conversationId: ID, signed: true } })

  await wrapper.find('[data-event=NEW_CONVERSATION]').trigger('click')
  await flush()
  await flush()

  expect(calls.map((c) => c.url)).toEqual(['/api/console/events/', '/webhook/'])
  expect(calls[0].options.headers['X-CSRFToken']).toBe('tok123')
  expect(JSON.parse(calls[0].options.body)).toEqual({ type: 'NEW_CONVERSATION', data: { id: ID } })
  expect(calls[1].options.body).toBe(signedBody)
  expect(calls[1].options.headers['X-Hub-Signature-256']).toBe('sha256=abc')
  expect(wrapper.find('.http-status').text()).toBe('HTTP 201')
})

it('sends an agent’s message with the text, and pauses and resumes the bot', async () => {
  const calls = stubFetch({ '/webhook/': { status: 200, body: {} } })
  const wrapper = mount(WebhookConsole, { props: { conversationId: ID } })
  await wrapper.find('textarea[name=content]').setValue('Sou a Ana')

  for (const type of ['AGENT_MESSAGE', 'PAUSE_BOT', 'RESUME_BOT']) {
    await wrapper.find(`[data-event=${type}]`).trigger('click')
    await flush()
  }

  const [agent, pause, resume] = calls.map((c) => JSON.parse(c.options.body))
  expect(agent).toMatchObject({ type: 'AGENT_MESSAGE', data: { content: 'Sou a Ana', conversation_id: ID } })
  expect(agent.data.id).toMatch(/^[0-9a-f-]{36}$/)
  expect(pause).toMatchObject({ type: 'PAUSE_BOT', data: { id: ID } })
  expect(resume).toMatchObject({ type: 'RESUME_BOT', data: { id: ID } })
})
