import { mount } from '@vue/test-utils'
import { afterEach, expect, it, vi } from 'vitest'
import ConversationList from '../components/ConversationList.vue'
import { flush, stubFetch } from './helpers.js'

afterEach(() => vi.unstubAllGlobals())

const page = {
  next: null,
  previous: null,
  results: [
    { id: 'aaaaaaaa-0000-4000-8000-000000000001', status: 'OPEN', created_at: '2026-01-01T00:00:00Z', updated_at: '2026-01-01T00:00:05Z', closed_at: null, pending_count: 1 },
    { id: 'bbbbbbbb-0000-4000-8000-000000000002', status: 'CLOSED', created_at: '2026-01-01T00:00:00Z', updated_at: '2026-01-01T00:00:01Z', closed_at: '2026-01-01T00:00:01Z', pending_count: 0 },
  ],
}

it('lists conversations with status and pending marks, and emits the one chosen', async () => {
  stubFetch({ '/conversations/': { body: page } })
  const wrapper = mount(ConversationList)
  await flush()

  const items = wrapper.findAll('.conversation-item')
  expect(items).toHaveLength(2)
  expect(items[0].text()).toContain('aaaaaaaa')
  expect(items[0].text()).toContain('Aberta')
  expect(items[0].text()).toContain('1 aguardando')
  expect(items[1].text()).toContain('Fechada')
  expect(items[1].text()).not.toContain('aguardando')
  await items[1].trigger('click')
  expect(wrapper.emitted('select')).toEqual([[page.results[1].id]])
  wrapper.unmount()
})

it('filters by status and searches by id through the API', async () => {
  const calls = stubFetch({ '/conversations/': { body: page } })
  const wrapper = mount(ConversationList)
  await flush()

  await wrapper.find('select[name=status]').setValue('CLOSED')
  await flush()
  await wrapper.find('input[name=q]').setValue('bbbb')
  await flush()

  const last = new URL(calls.at(-1).url, 'http://x')
  expect(last.searchParams.get('status')).toBe('CLOSED')
  expect(last.searchParams.get('q')).toBe('bbbb')
  expect(last.searchParams.has('cursor')).toBe(false)
  wrapper.unmount()
})

it('turns pages by the links the server gives, by their path only, and starts over when a filter changes', async () => {
  const first = { ...page, next: 'http://elsewhere.example/conversations/?cursor=bmV4dA%3D%3D&page_size=20' }
  const second = { ...page, previous: 'http://elsewhere.example/conversations/?cursor=cHJldg%3D%3D&page_size=20' }
  const calls = stubFetch({
    '/conversations/?cursor=bmV4dA': { body: second },
    '/conversations/?cursor=cHJldg': { body: first },
    '/conversations/': { body: first },
  })
  const wrapper = mount(ConversationList)
  await flush()
  const [previousButton, nextButton] = wrapper.findAll('.pager button')
  expect(previousButton.attributes('disabled')).toBeDefined()

  await nextButton.trigger('click')
  await flush()
  expect(calls.at(-1).url).toBe('/conversations/?cursor=bmV4dA%3D%3D&page_size=20')
  expect(wrapper.find('.pager span').text()).toBe('página 2')

  await previousButton.trigger('click')
  await flush()
  expect(calls.at(-1).url).toBe('/conversations/?cursor=cHJldg%3D%3D&page_size=20')
  expect(wrapper.find('.pager span').text()).toBe('página 1')

  await nextButton.trigger('click')
  await flush()
  await wrapper.find('select[name=status]').setValue('OPEN')
  await flush()
  expect(calls.at(-1).url).toBe('/conversations/?page_size=20&status=OPEN')
  expect(wrapper.find('.pager span').text()).toBe('página 1')
  wrapper.unmount()
})
