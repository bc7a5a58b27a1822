// End-to-end test of the web UI in headless Chromium (Debian's, driven by playwright-core) against a running
// stack: create a conversation and send two messages from the console, see them pending, see the one OUTBOUND
// reply after the window, write as an agent and resume the bot, close the conversation and see its status change.
//
// With reply delivery on, the first message's timeline shows the way to its reply and the delivery attempt.
//
//   BASE_URL=http://127.0.0.1:8000 WINDOW_SECONDS=5 SCREENSHOT=../docs/screenshot-conversation.png \
//     TIMELINE_SCREENSHOT=../docs/screenshot-timeline.png node e2e/ui.e2e.mjs
import { chromium } from 'playwright-core'

const BASE_URL = process.env.BASE_URL ?? 'http://127.0.0.1:8000'
const WINDOW_SECONDS = Number(process.env.WINDOW_SECONDS ?? 5)
const SCREENSHOT = process.env.SCREENSHOT
const TIMELINE_SCREENSHOT = process.env.TIMELINE_SCREENSHOT
const CHROMIUM = process.env.CHROMIUM ?? '/usr/bin/chromium'

function check(condition, message) {
  if (!condition) throw new Error(message)
  console.log(`ok - ${message}`)
}

const browser = await chromium.launch({
  executablePath: CHROMIUM,
  args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking'],
})
const page = await browser.newPage({ viewport: { width: 1280, height: 860 } })
const foreign = []
const errors = []
page.on('request', (request) => {
  const url = request.url()
  if (!url.startsWith(BASE_URL) && !url.startsWith('data:')) foreign.push(url)
})
page.on('pageerror', (error) => errors.push(String(error)))

let failed = false
try {
  await page.goto(`${BASE_URL}/`)
  await page.getByRole('heading', { name: 'Conversas WhatsApp' }).waitFor()
  check(true, 'the UI is served at / by the same origin')

  const console_ = page.locator('.console-panel')
  await console_.getByRole('button', { name: 'Novo id' }).click()
  const id = await console_.getByLabel('Id da conversa').inputValue()
  await console_.getByRole('button', { name: 'NEW_CONVERSATION' }).click()
  await console_.locator('.console-log li').first().getByText('HTTP 201').waitFor()
  check(true, 'NEW_CONVERSATION from the console answers 201')
  await page.waitForURL(`**/#/c/${id}`)
  await page.locator('.chat-header code', { hasText: id }).waitFor()
  check(true, 'the new conversation opens in the chat view')

  const text = console_.getByLabel('Texto da mensagem')
  await text.fill('Oi!')
  await console_.getByRole('button', { name: 'NEW_MESSAGE' }).click()
  await text.fill('Estou buscando uma casa com 2 quartos.')
  await text.press('Enter')
  await console_.getByRole('button', { name: 'NEW_MESSAGE' }).click()
  const sentAt = Date.now()
  const inbound = page.locator('.messages li[data-type=INBOUND]')
  await inbound.nth(1).waitFor()
  const pendingCount = await page.locator('.messages li.bubble-pending').count()
  check(pendingCount === 2, `both messages show as waiting for their reply (${pendingCount})`)
  await page.locator('.waiting').getByText(/Resposta em ~/).waitFor()
  check(true, 'a countdown to the reply is shown')

  const outbound = page.locator('.messages li[data-type=OUTBOUND]')
  await outbound.first().waitFor({ timeout: (WINDOW_SECONDS + 15) * 1000 })
  const waited = (Date.now() - sentAt) / 1000
  check(waited >= WINDOW_SECONDS - 0.5, `the reply appeared after the window (${waited.toFixed(1)} s)`)
  await page.waitForTimeout(1500)
  check((await outbound.count()) === 1, 'exactly one OUTBOUND reply for the burst')
  const reply = await outbound.first().locator('pre').innerText()
  const ids = reply.trim().split('\n')
  check(ids[0] === 'Mensagens recebidas:' && ids.length === 3, 'the reply lists the two message ids')
  check((await page.locator('.messages li.bubble-pending').count()) === 0, 'no message is waiting any more')
  const box = await outbound.first().boundingBox()
  const inBox = await inbound.first().boundingBox()
  check(box.x > inBox.x, 'the reply is on the right, the user on the left')
  if (SCREENSHOT) await page.screenshot({ path: SCREENSHOT, fullPage: true })

  // The reply reaches the receiver; the first message's timeline goes from its arrival to that attempt.
  await outbound.first().locator('.delivery-tag[data-delivery=delivered]').waitFor({ timeout: 20000 })
  await inbound.first().locator('.timeline summary').click()
  const steps = inbound.first().locator('.timeline li')
  await steps.locator('text=entrega #1').waitFor()
  const kinds = await steps.evaluateAll((items) => items.map((item) => item.dataset.step))
  check(
    kinds.join(',') === 'arrived,group,due,replied,attempt',
    `the first message's timeline: arrival, group, due, reply, delivery (${kinds.join(',')})`,
  )
  const due = await steps.nth(2).innerText()
  check(/o grupo venceu \(após o silêncio\)/.test(due), `it says when the group fell due and why (${due})`)
  if (TIMELINE_SCREENSHOT) await inbound.first().screenshot({ path: TIMELINE_SCREENSHOT })

  await text.fill('Sou a Ana, vou te ajudar.')
  await console_.getByRole('button', { name: 'AGENT_MESSAGE' }).click()
  await page.locator('.messages li.bubble-agent', { hasText: 'Sou a Ana' }).waitFor()
  await page.locator('.takeover').getByText('Uma pessoa está atendendo').waitFor()
  check(true, "an agent's message looks apart from the bot's, and the conversation says a person has it")
  await page.getByRole('button', { name: 'Retomar o bot' }).click()
  await page.locator('.takeover').waitFor({ state: 'detached' })
  check(true, 'the resume button gives the conversation back to the bot')

  await console_.getByRole('button', { name: 'CLOSE_CONVERSATION' }).click()
  await page.locator('.chat-header .badge', { hasText: 'Fechada' }).waitFor()
  await page.locator('.chat-header .closed-at').waitFor()
  check(true, 'closing from the console changes the status in the chat view')

  await page.goto(`${BASE_URL}/#/c/${id}`)
  await page.locator(`.conversation-item[data-id="${id}"]`).waitFor()
  check(true, 'the conversation is in the list')

  // A conversation's URL is a link a colleague can open: a full reload lands on the same chat view.
  await page.reload()
  await page.locator('#chat-title code', { hasText: id }).waitFor()
  const reasons = await page.locator('.messages li[data-type=OUTBOUND] .reason-tag').allInnerTexts()
  check(reasons.length === 1 && reasons[0].trim() === 'após o silêncio', 'after a reload, the conversation opens from its URL, its reply saying why it was sent')

  check(foreign.length === 0, `no request left the origin ${foreign.join(' ')}`)
  check(errors.length === 0, `no script error in the page ${errors.join(' ')}`)
} catch (error) {
  failed = true
  console.error(`not ok - ${error.message}`)
  await page.screenshot({ path: '/tmp/ui-e2e-failure.png', fullPage: true }).catch(() => {})
} finally {
  await browser.close()
}
process.exit(failed ? 1 : 0)
