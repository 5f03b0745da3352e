import { describe, expect, it } from 'vitest'
import { insertedBetween } from './table-parts.ts'

describe('insertedBetween', () => {
  it('bounds the parts inserted into a partition between two readings of its parts by the blocks above the first', () => {
    const before = ['20260302_1_5_1', '20260302_8_8_1']
    // Unchanged, or merged: nothing inserted.
    expect(insertedBetween(before, before)).toBe(0)
    expect(insertedBetween(before, ['20260302_1_8_2'])).toBe(0)
    // Two inserts (blocks 12 and 15; blocks between went to other partitions).
    expect(insertedBetween(before, ['20260302_1_8_2', '20260302_12_12_1', '20260302_15_15_1'])).toBe(2)
    // A merge of an old part with new blocks 9 to 12: each may have been an insert.
    expect(insertedBetween(before, ['20260302_1_12_2'])).toBe(4)
    // An empty partition before: every block after counts.
    expect(insertedBetween([], ['20260302_3_3_1', '20260302_4_6_2'])).toBe(4)
    // A name of another shape: nothing is known.
    expect(insertedBetween(before, ['20260302_1_8_2', 'odd'])).toBe(Infinity)
  })
})
