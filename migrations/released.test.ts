import { describe, expect, it } from 'vitest'
import { EARLIER_CHECKSUMS, loadMigrations } from './runner.ts'

/**
 * The checksum of every migration as released (SQL rendered with SETTLEMENT_TZ
 * Asia/Seoul; a code step's text and the modules of this folder it imports). A database
 * refuses to start when an applied migration's checksum differs, so a change to a
 * released one (or to a module a code step imports: `rebuild.ts`, `partitions.ts`) would stop every deployed
 * server: change the schema by a new migration, and add its line here. A fix to such a module that
 * leaves what the step does unchanged changes the step's line here, with its line before kept in
 * the runner's EARLIER_CHECKSUMS (databases that applied it then still start).
 */
const RELEASED: [number, string][] = [
  [1, '63a6a8a1eee8dae01e19e198dfbed8228059c04680789cf682e7b73d13f24e50'],
  [2, '4a6b50078651cf5af18b2737b6e2e027f9f9ffcd79aed2e22765a3f7318a3373'],
  [3, '3a1a81e4f92902fe001222a7f6f010b5b9a70d8e81b219b4ed474ed8bb4a6f14'],
  [4, 'e5836e4e3ce656554a1f12b4bcc6a2bb05695eb9582cf315d4f84c1a51ee9148'],
  [5, 'a45b005f17a582dcef54f1536533a4be2a0f74d09791d36f281b365849d8998d'],
  [6, 'f37de8bb49e0cf0fa036a83a63c818feea6d0b632ff8dc067e17389e60f8c784'],
  [7, 'f0631beee0869288f4e075067416647508842261667020cffbb8c04efeed5276'],
  [8, '337c901cdb331be6e2c836362df966905f336327157312bcb3e218270a0f2781'],
  [9, 'b68a28f9a01c1521539695d811f6eb4377cb900a7e4c1c0088e19e864cde0077'],
  [10, 'ffa87372c3d9d7afa66e9920c207834027c77b4c18f84b17ff6a24f243e32a6b'],
  [11, '74fdfa3bcc69b31bbc3ef3b3063581e545337b8eecb3d4df470e2bda78c217b0'],
  [12, 'b0312f9b9e2641f7d5445123b270a4d64c74aa8ef89270e87304a302c7cc4f7a'],
  [13, '6cbbf90e9a56072b4aba714d19e528a256b55b1c4b1e2a93debcbb047f60e714'],
  [14, '2034b444d5221cb2575ddadc8d9b54595273026d3d60e656a33850247713f23b'],
  [15, '5f3b8bb22f770de6142ba16f8acd6303da4112e14b7bdc19440d3088599988c3'],
  [16, '4b1e6d17d4b360d508734373402bb55f519ce653e4ffce3f8b02cce64f324c20'],
  [17, 'f67aa390465311fd26a428052b583ffadd5acfb5a406cb4b0a623e4758c2a5c1'],
  [18, '1bab9df6bbf240482b8ce87b630d4030c209dd114bddd6da7f0ee995a7c62587'],
  [30, '4b89718c2ae383365836d0443cced886d18e30c75d2751fa6750d9cf9ddc4267'],
  [31, '8132c511d9ffb8bdf975847547ffac51752e00d1a978b8da0a0a0c87fb26d6ca'],
  [32, '8aafcc54fa59ef4302cd8690b3eae6d78b8c19656e139e86ff414d069e3698b2'],
  [33, '69d586cd8615cce40d97c87a692a7462582af7e9c0049f76e06517a34e617b7c'],
  [34, '51274367f5c6afc6a159623a06be77100cfa855eb484c437afe8237f52a03bbf'],
  [35, 'cbe171100f074b715a311ff8d3a417a336540811261fb4f9886b8408b65ca7be'],
  [36, '7d848b99d132d836d8d99e71b8b6d894b2bb4d6910cead54a2993f4dfb705083'],
  [37, '9d422e0c92be76de5e4c31ea0d7c9b51f342068c7e4c5a8722c9a279d0a6adf4'],
  [50, '359b0224b08ab519e7c1f4950952e10c7a79af41264112f9c7d5165dd0b6e45a'],
  [60, '93a799e625429d387b10a613c895c815588e8151993f9c2ac60305149a92406a'],
  [61, 'e6bc4684a77f3247781875bc6d0efe6269d3aafbd74620cb9fd1996a4c0db734'],
  [62, '7d9c2b5e93c67d9a2ca8214b79c7592082b8d7ebc39fc1de9a3aab7db5a5c803'],
  [63, '09a79e77baa2e318a90fe0a79edd022196347691848f5ff4d4f2a62f5afb3894'],
  [64, '41045ea8ad59154346125468f74cda27b5a65c74a78b49a0375fd23d2c3080ff'],
  [65, '53878cfeb6d0cc8186421fcf9cb0826a670fb38d2b6b47cafce225ef6f398210'],
  [66, '501d36c0f002e2197a5ad718f84588b2f3e3356a61e7047baa965b8b3b105654'],
]

/** Each code step's checksums before a fix of a module it imports (EARLIER_CHECKSUMS), as released then. */
const EARLIER: [number, string[]][] = [
  [60, ['7de98916f907d992acf73fdfb518ea1c59b2783447455dec8c9eaaf889574727']],
  [62, ['87a67a3f2483fd44e2ad50ba57228fb449ad3d6a3861d906488d1a4d362cf558']],
]

describe('released migrations', () => {
  it('are unchanged: each checksum as released, and a line here for each', () => {
    expect(loadMigrations({ SETTLEMENT_TZ: 'Asia/Seoul' }).map((m) => [m.version, m.checksum])).toEqual(RELEASED)
  })

  it('keep every earlier checksum a database may have recorded', () => {
    expect([...EARLIER_CHECKSUMS]).toEqual(EARLIER)
  })
})
