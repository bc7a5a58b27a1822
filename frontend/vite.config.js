import { defineConfig } from 'vite'
import vue from '@vitejs/plugin-vue'

// Built files are served by Django under /static/ (WhiteNoise); `npm run dev` proxies the API to Django.
const api = 'http://127.0.0.1:8000'

export default defineConfig({
  base: '/static/',
  plugins: [vue()],
  build: { outDir: 'dist', emptyOutDir: true },
  server: {
    proxy: Object.fromEntries(['/webhook', '/conversations', '/healthz', '/api', '/admin'].map((p) => [p, api])),
  },
  test: { environment: 'happy-dom' },
})
