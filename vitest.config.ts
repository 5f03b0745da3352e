import { defineConfig } from 'vitest/config'

export default defineConfig({
  test: {
    include: ['**/*.test.ts'],
    exclude: ['node_modules/**', 'data/**'],
    // One process per test file: each opens its own chDB data folder.
    pool: 'forks',
    testTimeout: 60_000,
    hookTimeout: 120_000,
  },
})
