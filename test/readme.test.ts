import { readFileSync } from 'node:fs'
import { join } from 'node:path'
import { expect, it } from 'vitest'
import { analyticsSettingsSchema } from '../analytics/settings.ts'
import { settingsSchema } from '../lib/config.ts'
import { ROOT } from './harness/process.ts'

const readme = readFileSync(join(ROOT, 'README.md'), 'utf8')

it('documents every setting in the README', () => {
  const names = [...Object.keys(settingsSchema.shape), ...Object.keys(analyticsSettingsSchema.shape)]
  expect(names.filter((n) => !readme.includes(`\`${n}\``))).toEqual([])
})

it('documents every npm script in the README', () => {
  const scripts = Object.keys((JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as { scripts: Record<string, string> }).scripts)
  expect(scripts.filter((s) => !readme.includes(s === 'start' || s === 'test' ? `npm ${s}` : `npm run ${s}`) && !readme.includes(`npm run -s ${s}`))).toEqual([])
})

it('has CI call the same test command as the README', () => {
  expect(readFileSync(join(ROOT, '.ci/run'), 'utf8')).toMatch(/^npm test\b/m)
  expect(readme).toMatch(/^npm test\b/m)
})
