// Parses every ```mermaid block of the given Markdown files with mermaid itself, in headless Chromium
// (Debian's), so a diagram that would not render on GitHub fails the tests.
//
//   node scripts/check-diagrams.mjs ../docs/architecture.md
import { readFileSync } from 'node:fs'
import { createRequire } from 'node:module'
import { chromium } from 'playwright-core'

const files = process.argv.slice(2)
const blocks = files.flatMap((file) =>
  [...readFileSync(file, 'utf8').matchAll(/```mermaid\n([\s\S]*?)```/g)].map((match, index) => ({
    name: `${file} #${index + 1}`,
    text: match[1],
  })),
)
if (!blocks.length) {
  console.error('not ok - no mermaid diagram found')
  process.exit(1)
}

const mermaidJs = createRequire(import.meta.url).resolve('mermaid/dist/mermaid.min.js')
const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM ?? '/usr/bin/chromium',
  args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking'],
})
let failures = 0
try {
  const page = await browser.newPage()
  await page.setContent('<!doctype html><html><body></body></html>')
  await page.addScriptTag({ path: mermaidJs })
  for (const block of blocks) {
    const result = await page.evaluate(async (text) => {
      try {
        const parsed = await window.mermaid.parse(text)
        return { ok: true, type: parsed.diagramType }
      } catch (error) {
        return { ok: false, error: String(error.message ?? error) }
      }
    }, block.text)
    if (result.ok) {
      console.log(`ok - ${block.name} (${result.type})`)
    } else {
      failures += 1
      console.log(`not ok - ${block.name}: ${result.error}`)
    }
  }
} finally {
  await browser.close()
}
console.log(`diagrams: ${blocks.length - failures} parsed, ${failures} failed`)
process.exit(failures ? 1 : 0)
