import { onBeforeUnmount, onMounted } from 'vue'

// Calls `load` now and every `intervalMs` while the component is mounted; a slow answer is never overlapped.
export function usePolling(load, intervalMs) {
  let timer = null
  let stopped = false
  async function tick() {
    try {
      await load()
    } finally {
      if (!stopped) timer = setTimeout(tick, intervalMs)
    }
  }
  onMounted(tick)
  onBeforeUnmount(() => {
    stopped = true
    clearTimeout(timer)
  })
  return { refresh: load }
}
