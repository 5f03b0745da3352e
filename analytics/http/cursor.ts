import { ApiError } from '../../lib/errors.ts'

/** The opaque cursor of a listing row's key (its key columns' values as text), what a page's `next` gives. */
export const cursorOf = (values: string[]) => Buffer.from(JSON.stringify(values)).toString('base64url')

/** The key a cursor holds (checked by `valid` when given: the listing's own shape); a 400 when it is not one of ours. */
export function keyOfCursor(cursor: string, valid: (values: string[]) => boolean = () => true): string[] {
  try {
    const values: unknown = JSON.parse(Buffer.from(cursor, 'base64url').toString('utf8'))
    if (Array.isArray(values) && values.every((v) => typeof v === 'string') && valid(values)) return values
  } catch {
    // answered below
  }
  throw new ApiError('BAD_REQUEST', 'after is not a cursor of this listing: pass the `next` of the page before')
}
