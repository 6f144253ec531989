import { assert, describe, it } from "@effect/vitest"
import { Buffer } from "node:buffer"
import { Effect, Result } from "effect"
import * as fc from "fast-check"
import * as Filter from "../src/Filter.ts"

const compiled = (type: Filter.FilterType, expression: string): Filter.Filter =>
  Result.getOrThrow(Filter.compile({ type, expression }))

const failure = (type: Filter.FilterType, expression: string): Filter.IllegalFilterExpression => {
  const result = Filter.compile({ type, expression })
  if (Result.isSuccess(result)) throw new Error(`${JSON.stringify(expression)} compiled, expected an error`)
  return result.failure
}

// ---------------------------------------------------------------------------------------------
// Tags
// ---------------------------------------------------------------------------------------------

/** FNV-1a over the bytes Node's own UTF-8 encoder produces, with 0 mapped to 1. */
const referenceTagHash = (tag: string): number => {
  let hash = 0x811c9dc5
  for (const byte of Buffer.from(tag, "utf8")) hash = Math.imul(hash ^ byte, 0x01000193)
  hash >>>= 0
  return hash === 0 ? 1 : hash
}

describe("tagHash", () => {
  const vectors: ReadonlyArray<readonly [string, string, number]> = [
    ["the empty tag hashes to the FNV offset basis", "", 0x811c9dc5],
    ["a one-byte tag matches the published FNV-1a vector", "a", 0xe40c292c],
    ["a longer tag matches the published FNV-1a vector", "foobar", 0xbf9cf968],
    ["a tag whose FNV-1a is 0 hashes to 1, since 0 means no tag", "z8FNbar", 1],
    ["multi-byte characters are hashed as UTF-8", "订单", referenceTagHash("订单")],
    ["a character outside the BMP is hashed as its 4 UTF-8 bytes", "📦", referenceTagHash("📦")]
  ]
  for (const [rule, tag, hash] of vectors) {
    it(rule, () => assert.strictEqual(Filter.tagHash(tag), hash))
  }

  it("any string, lone surrogates included, hashes as its UTF-8 encoding does", () => {
    const codeUnits = fc.string({ unit: fc.integer({ min: 0, max: 0xffff }).map((code) => String.fromCharCode(code)) })
    fc.assert(
      fc.property(fc.oneof(codeUnits, fc.string({ unit: "binary" })), (tag) => Filter.tagHash(tag) === referenceTagHash(tag)),
      { seed: 42, numRuns: 2_000 }
    )
  })
})

interface TagRow {
  readonly rule: string
  readonly expression: string
  readonly tag: string | undefined
  readonly matches: boolean
}

const tagRows: ReadonlyArray<TagRow> = [
  { rule: "* matches a tagged message", expression: "*", tag: "A", matches: true },
  { rule: "* matches a message without a tag", expression: "*", tag: undefined, matches: true },
  { rule: "an empty expression matches everything", expression: "", tag: undefined, matches: true },
  { rule: "a blank expression matches everything", expression: "  \t ", tag: "A", matches: true },
  { rule: "* surrounded by spaces matches everything", expression: " * ", tag: undefined, matches: true },
  { rule: "a tag name matches that tag", expression: "A", tag: "A", matches: true },
  { rule: "a tag name does not match another tag", expression: "A", tag: "B", matches: false },
  { rule: "a tag name does not match a message without a tag", expression: "A", tag: undefined, matches: false },
  { rule: "tags are case-sensitive", expression: "BB", tag: "bb", matches: false },
  { rule: "a tag must match exactly, not by prefix", expression: "A", tag: "AB", matches: false },
  { rule: "spaces around a name are not part of it", expression: "  A  ", tag: "A", matches: true },
  { rule: "A || B matches A", expression: "A || B", tag: "A", matches: true },
  { rule: "A || B matches B", expression: "A || B", tag: "B", matches: true },
  { rule: "A || B does not match C", expression: "A || B", tag: "C", matches: false },
  { rule: "A || B does not match a message without a tag", expression: "A || B", tag: undefined, matches: false },
  { rule: "|| needs no spaces around it", expression: "A||B||C", tag: "C", matches: true },
  { rule: "spaces and tabs around || are ignored", expression: "  A \t||   B  ", tag: "B", matches: true },
  { rule: "a space inside a name is part of it", expression: "order created || x", tag: "order created", matches: true },
  { rule: "non-ASCII tags match exactly", expression: "订单 || 📦", tag: "📦", matches: true }
]

describe("tag filters", () => {
  for (const row of tagRows) {
    it(`${row.rule} (${JSON.stringify(row.expression)}, tag ${JSON.stringify(row.tag)})`, () => {
      const filter = compiled("TAG", row.expression)
      assert.strictEqual(filter.matches({ tag: row.tag, properties: {} }), row.matches)
    })
  }

  it("a tag list exposes its names and their hashes for the index pre-filter", () => {
    const filter = compiled("TAG", "A || B || A")
    assert.deepStrictEqual(filter.tags, new Set(["A", "B"]))
    assert.deepStrictEqual(filter.tagHashes, new Set([Filter.tagHash("A"), Filter.tagHash("B")]))
  })

  it("a tag list accepts the hashes of its tags and rejects others and the no-tag hash 0", () => {
    const filter = compiled("TAG", "A || B")
    assert.isTrue(filter.acceptsTagHash(Filter.tagHash("A")))
    assert.isTrue(filter.acceptsTagHash(Filter.tagHash("B")))
    assert.isFalse(filter.acceptsTagHash(Filter.tagHash("C")))
    assert.isFalse(filter.acceptsTagHash(0))
  })

  it("* accepts every tag hash, the no-tag hash 0 included", () => {
    const filter = compiled("TAG", "*")
    assert.strictEqual(filter.tags, "*")
    assert.strictEqual(filter.tagHashes, "*")
    assert.isTrue(filter.acceptsTagHash(0))
    assert.isTrue(filter.acceptsTagHash(Filter.tagHash("anything")))
  })

  it("a SQL92 filter leaves the decision to matches: it accepts every tag hash", () => {
    const filter = compiled("SQL92", "TAGS = 'A'")
    assert.strictEqual(filter.tags, "*")
    assert.isTrue(filter.acceptsTagHash(Filter.tagHash("B")))
    assert.isTrue(filter.acceptsTagHash(0))
  })
})

// ---------------------------------------------------------------------------------------------
// SQL92
// ---------------------------------------------------------------------------------------------

interface SqlRow {
  readonly expression: string
  readonly properties: Readonly<Record<string, string>>
  readonly tag?: string
  readonly matches: boolean
}

const sqlSections: ReadonlyArray<readonly [string, ReadonlyArray<SqlRow>]> = [
  ["a property compared with a number is read as a number", [
    { expression: "price > 20", properties: { price: "25" }, matches: true },
    { expression: "price > 20", properties: { price: "20" }, matches: false },
    { expression: "price > 20", properties: { price: "20.5" }, matches: true },
    { expression: "price > 20", properties: { price: "100" }, matches: true }, // not "100" < "20" as strings
    { expression: "price >= 20", properties: { price: "20" }, matches: true },
    { expression: "price < 20", properties: { price: "-5" }, matches: true },
    { expression: "price <= 20", properties: { price: "20.0" }, matches: true },
    { expression: "price = 20", properties: { price: "20" }, matches: true },
    { expression: "price = 20", properties: { price: "20.0" }, matches: true },
    { expression: "price = 20", properties: { price: "020" }, matches: true },
    { expression: "price = 20", properties: { price: "2e1" }, matches: true },
    { expression: "price = 20", properties: { price: "+20" }, matches: true },
    { expression: "price <> 20", properties: { price: "21" }, matches: true },
    { expression: "price <> 20", properties: { price: "20" }, matches: false },
    { expression: "price > 2.5", properties: { price: "3" }, matches: true },
    { expression: "price > -1", properties: { price: "0" }, matches: true },
    { expression: "price = 1e3", properties: { price: "1000" }, matches: true },
    { expression: "price < .5", properties: { price: "0.25" }, matches: true },
    { expression: "20 < price", properties: { price: "25" }, matches: true },
    { expression: "id = 9007199254740993", properties: { id: "9007199254740993" }, matches: true },
    { expression: "id = 9007199254740993", properties: { id: "9007199254740992" }, matches: false },
    { expression: "id > 9007199254740992", properties: { id: "9007199254740993" }, matches: true }
  ]],
  ["a value that is not a number makes a numeric comparison unknown, so false either way", [
    { expression: "price > 20", properties: { price: "abc" }, matches: false },
    { expression: "price = 20", properties: { price: " 20" }, matches: false },
    { expression: "price = 20", properties: { price: "" }, matches: false },
    { expression: "price <> 20", properties: { price: "abc" }, matches: false },
    { expression: "NOT price = 20", properties: { price: "abc" }, matches: false }
  ]],
  ["strings compare as strings", [
    { expression: "region = 'eu'", properties: { region: "eu" }, matches: true },
    { expression: "region = 'eu'", properties: { region: "EU" }, matches: false },
    { expression: "region <> 'eu'", properties: { region: "us" }, matches: true },
    { expression: "region <> 'eu'", properties: { region: "eu" }, matches: false },
    { expression: "name = 'it''s'", properties: { name: "it's" }, matches: true },
    { expression: "name = ''", properties: { name: "" }, matches: true },
    { expression: "code = '007'", properties: { code: "7" }, matches: false },
    { expression: "code = 7", properties: { code: "007" }, matches: true }
  ]],
  ["two properties compare as strings by = and as numbers by order", [
    { expression: "a = b", properties: { a: "x", b: "x" }, matches: true },
    { expression: "a = b", properties: { a: "1", b: "1.0" }, matches: false },
    { expression: "a <> b", properties: { a: "x", b: "y" }, matches: true },
    { expression: "a < b", properties: { a: "2", b: "10" }, matches: true },
    { expression: "a < b", properties: { a: "x", b: "y" }, matches: false },
    { expression: "a = b", properties: { a: "x" }, matches: false }
  ]],
  ["a property compared with a boolean reads true or false in any case", [
    { expression: "flag = TRUE", properties: { flag: "true" }, matches: true },
    { expression: "flag = TRUE", properties: { flag: "TRUE" }, matches: true },
    { expression: "flag = TRUE", properties: { flag: "yes" }, matches: false },
    { expression: "flag = false", properties: { flag: "False" }, matches: true },
    { expression: "flag <> TRUE", properties: { flag: "false" }, matches: true },
    { expression: "flag <> TRUE", properties: { flag: "yes" }, matches: false }
  ]],
  ["TRUE and FALSE stand alone as conditions", [
    { expression: "TRUE", properties: {}, matches: true },
    { expression: "FALSE", properties: {}, matches: false },
    { expression: "NOT FALSE", properties: {}, matches: true },
    { expression: "TRUE AND a = 1", properties: { a: "1" }, matches: true }
  ]],
  ["literals compare among themselves", [
    { expression: "1 = 1", properties: {}, matches: true },
    { expression: "'a' = 'b'", properties: {}, matches: false },
    { expression: "'10' = 10", properties: {}, matches: true },
    { expression: "TRUE = 'true'", properties: {}, matches: true },
    { expression: "'abc' CONTAINS 'b'", properties: {}, matches: true }
  ]],
  ["BETWEEN includes both bounds and NOT BETWEEN excludes them", [
    { expression: "price BETWEEN 10 AND 20", properties: { price: "10" }, matches: true },
    { expression: "price BETWEEN 10 AND 20", properties: { price: "20" }, matches: true },
    { expression: "price BETWEEN 10 AND 20", properties: { price: "15.5" }, matches: true },
    { expression: "price BETWEEN 10 AND 20", properties: { price: "9.99" }, matches: false },
    { expression: "price BETWEEN 10 AND 20", properties: { price: "21" }, matches: false },
    { expression: "price BETWEEN 10 AND 20", properties: {}, matches: false },
    { expression: "price BETWEEN 10 AND 20", properties: { price: "x" }, matches: false },
    { expression: "price BETWEEN -5 AND -5", properties: { price: "-5" }, matches: true },
    { expression: "price BETWEEN low AND high", properties: { price: "5", low: "1", high: "9" }, matches: true },
    { expression: "price NOT BETWEEN 10 AND 20", properties: { price: "9" }, matches: true },
    { expression: "price NOT BETWEEN 10 AND 20", properties: { price: "21" }, matches: true },
    { expression: "price NOT BETWEEN 10 AND 20", properties: { price: "15" }, matches: false },
    { expression: "price NOT BETWEEN 10 AND 20", properties: {}, matches: false },
    { expression: "price BETWEEN 10 AND 20 AND region = 'eu'", properties: { price: "15", region: "eu" }, matches: true }
  ]],
  ["IN compares strings against a list", [
    { expression: "region IN ('eu', 'us')", properties: { region: "eu" }, matches: true },
    { expression: "region IN ('eu', 'us')", properties: { region: "ap" }, matches: false },
    { expression: "region IN ('eu', 'us')", properties: {}, matches: false },
    { expression: "code IN ('1')", properties: { code: "1.0" }, matches: false },
    { expression: "region NOT IN ('eu', 'us')", properties: { region: "ap" }, matches: true },
    { expression: "region NOT IN ('eu', 'us')", properties: { region: "eu" }, matches: false },
    { expression: "region NOT IN ('eu', 'us')", properties: {}, matches: false },
    { expression: "n IN ('a','b','c','d','e','f')", properties: { n: "f" }, matches: true }
  ]],
  ["IS NULL is true exactly when the property is missing", [
    { expression: "region IS NULL", properties: {}, matches: true },
    { expression: "region IS NULL", properties: { region: "eu" }, matches: false },
    { expression: "region IS NULL", properties: { region: "" }, matches: false },
    { expression: "region IS NOT NULL", properties: { region: "" }, matches: true },
    { expression: "region IS NOT NULL", properties: {}, matches: false },
    { expression: "'x' IS NULL", properties: {}, matches: false },
    { expression: "constructor IS NULL", properties: {}, matches: true },
    { expression: "toString = 'x'", properties: {}, matches: false }
  ]],
  ["a missing property makes comparisons false, and NOT does not make them true", [
    { expression: "region = 'eu'", properties: {}, matches: false },
    { expression: "region <> 'eu'", properties: {}, matches: false },
    { expression: "price > 1", properties: {}, matches: false },
    { expression: "NOT region = 'eu'", properties: {}, matches: false },
    { expression: "NOT price > 1", properties: {}, matches: false }
  ]],
  ["unknown follows SQL's three-valued logic", [
    { expression: "a = 1 OR b IS NULL", properties: { a: "x" }, matches: true },
    { expression: "a = 1 OR b = 2", properties: { b: "2" }, matches: true },
    { expression: "a = 1 AND b = 2", properties: { b: "2" }, matches: false },
    { expression: "NOT (a = 1 AND b = 2)", properties: { b: "3" }, matches: true },
    { expression: "NOT (a = 1 OR b = 2)", properties: { b: "3" }, matches: false },
    { expression: "NOT (a = 1 OR b = 2)", properties: { a: "2", b: "3" }, matches: true }
  ]],
  ["AND binds tighter than OR, and NOT tighter than AND but looser than a comparison", [
    { expression: "a = 1 OR b = 1 AND c = 1", properties: { a: "1", b: "0", c: "0" }, matches: true },
    { expression: "a = 1 OR b = 1 AND c = 1", properties: { a: "0", b: "1", c: "0" }, matches: false },
    { expression: "b = 1 AND c = 1 OR a = 1", properties: { a: "1", b: "0", c: "0" }, matches: true },
    { expression: "(a = 1 OR b = 1) AND c = 1", properties: { a: "1", b: "0", c: "0" }, matches: false },
    { expression: "NOT a = 1", properties: { a: "2" }, matches: true },
    { expression: "NOT a = 1", properties: { a: "1" }, matches: false },
    { expression: "NOT NOT a = 1", properties: { a: "1" }, matches: true },
    { expression: "NOT a = 1 AND b = 1", properties: { a: "2", b: "1" }, matches: true },
    { expression: "NOT a = 1 AND b = 1", properties: { a: "2", b: "2" }, matches: false },
    { expression: "NOT (a = 1 OR b = 1)", properties: { a: "2", b: "2" }, matches: true },
    { expression: "a = 1 AND b = 1 AND c = 1 AND d = 1", properties: { a: "1", b: "1", c: "1", d: "1" }, matches: true },
    { expression: "a = 1 OR b = 1 OR c = 1 OR d = 1", properties: { d: "1" }, matches: true },
    { expression: "((((a = 1))))", properties: { a: "1" }, matches: true }
  ]],
  ["TAGS is the message's tag", [
    { expression: "TAGS = 'A'", properties: {}, tag: "A", matches: true },
    { expression: "TAGS = 'A'", properties: {}, tag: "B", matches: false },
    { expression: "TAGS = 'A'", properties: {}, matches: false },
    { expression: "TAGS IS NULL", properties: {}, matches: true },
    { expression: "TAGS IN ('A', 'B') AND price > 20", properties: { price: "21" }, tag: "B", matches: true },
    { expression: "TAGS = 'A'", properties: { TAGS: "A" }, tag: "B", matches: false },
    { expression: "tags = 'A'", properties: {}, tag: "A", matches: false }
  ]],
  ["CONTAINS, STARTSWITH and ENDSWITH match within strings", [
    { expression: "name CONTAINS 'ell'", properties: { name: "hello" }, matches: true },
    { expression: "name CONTAINS 'xyz'", properties: { name: "hello" }, matches: false },
    { expression: "name NOT CONTAINS 'xyz'", properties: { name: "hello" }, matches: true },
    { expression: "name NOT CONTAINS 'xyz'", properties: {}, matches: false },
    { expression: "name STARTSWITH 'he'", properties: { name: "hello" }, matches: true },
    { expression: "name NOT STARTSWITH 'he'", properties: { name: "hello" }, matches: false },
    { expression: "name ENDSWITH 'lo'", properties: { name: "hello" }, matches: true },
    { expression: "name ENDSWITH 'he'", properties: { name: "hello" }, matches: false }
  ]],
  ["keywords are case-insensitive, property names are not, and whitespace is free", [
    { expression: "price between 10 and 20 or region is not null", properties: { region: "eu" }, matches: true },
    { expression: "Region = 'eu'", properties: { region: "eu" }, matches: false },
    { expression: "price\n>\t20\r\n", properties: { price: "21" }, matches: true },
    { expression: "(price>20)AND($x_1='y')", properties: { price: "21", $x_1: "y" }, matches: true },
    { expression: "price>20AND a='y'", properties: { price: "21", a: "y" }, matches: true }
  ]]
]

describe("SQL92 filters", () => {
  for (const [rule, rows] of sqlSections) {
    describe(rule, () => {
      for (const row of rows) {
        const message = { tag: row.tag, properties: row.properties }
        it(`${row.expression} ${row.matches ? "matches" : "does not match"} ${JSON.stringify(message)}`, () => {
          assert.strictEqual(compiled("SQL92", row.expression).matches(message), row.matches)
        })
      }
    })
  }
})

// ---------------------------------------------------------------------------------------------
// Illegal expressions
// ---------------------------------------------------------------------------------------------

interface BadRow {
  readonly type: Filter.FilterType
  readonly expression: string
  readonly reason: string
  readonly position: number
}

const badRows: ReadonlyArray<BadRow> = [
  { type: "TAG", expression: "A ||", reason: "expected a tag name after ||", position: 4 },
  { type: "TAG", expression: "|| A", reason: "expected a tag name before ||", position: 0 },
  { type: "TAG", expression: "A |||| B", reason: "expected a tag name before ||", position: 4 },
  { type: "TAG", expression: "A ||  || B", reason: "expected a tag name before ||", position: 6 },
  { type: "TAG", expression: "A | B", reason: "contains |", position: 2 },
  { type: "TAG", expression: "A ||| B", reason: "contains |", position: 4 },
  { type: "TAG", expression: "A\u0001", reason: "contains a control character", position: 1 },
  { type: "TAG", expression: "A\tB", reason: "contains a control character", position: 1 },
  { type: "TAG", expression: "A\u0085 || B", reason: "contains a control character", position: 1 },
  { type: "TAG", expression: "A || *", reason: "* cannot be combined with other tags", position: 5 },
  { type: "TAG", expression: "A".repeat(4097), reason: "4097 characters, the maximum is 4096", position: 4096 },

  { type: "SQL92", expression: "", reason: "the expression is empty", position: 0 },
  { type: "SQL92", expression: "   ", reason: "the expression is empty", position: 0 },
  { type: "SQL92", expression: "a >", reason: "expected a value, found the end of the expression", position: 3 },
  { type: "SQL92", expression: "a > 'x'", reason: "a string cannot be compared with >", position: 4 },
  { type: "SQL92", expression: "'x' <= a", reason: "a string cannot be compared with <=", position: 0 },
  { type: "SQL92", expression: "a > TRUE", reason: "a boolean cannot be compared with >", position: 4 },
  { type: "SQL92", expression: "TRUE = 1", reason: "a boolean cannot be compared with a number", position: 5 },
  { type: "SQL92", expression: "a BETWEEN 'a' AND 'z'", reason: "a string cannot be compared with BETWEEN", position: 10 },
  { type: "SQL92", expression: "a BETWEEN 10 AND 1", reason: "lower bound 10 of BETWEEN is greater than its upper bound 1", position: 10 },
  { type: "SQL92", expression: "a BETWEEN 1 OR 2", reason: "expected AND between the bounds of BETWEEN, found OR", position: 12 },
  { type: "SQL92", expression: "a IN ()", reason: "expected a string literal in the IN list", position: 6 },
  { type: "SQL92", expression: "a IN (1, 2)", reason: "expected a string literal in the IN list, found \"1\"", position: 6 },
  { type: "SQL92", expression: "a IN ('x'", reason: "expected , or ) in the IN list", position: 9 },
  { type: "SQL92", expression: "a IN 'x'", reason: "expected ( after IN", position: 5 },
  { type: "SQL92", expression: "'x' IN ('x')", reason: "IN needs a property on its left, found a string", position: 0 },
  { type: "SQL92", expression: "a IS 1", reason: "expected NULL or NOT NULL after IS", position: 5 },
  { type: "SQL92", expression: "a IS NOT 1", reason: "expected NULL after IS NOT", position: 9 },
  { type: "SQL92", expression: "a = NULL", reason: "NULL is only allowed in IS NULL and IS NOT NULL", position: 4 },
  { type: "SQL92", expression: "a = 1 b = 2", reason: "expected AND, OR or the end, found \"b\"", position: 6 },
  { type: "SQL92", expression: "a = 1 = 2", reason: "expected AND, OR or the end, found \"=\"", position: 6 },
  { type: "SQL92", expression: "(a = 1", reason: "expected AND, OR or ), found the end of the expression", position: 6 },
  { type: "SQL92", expression: "a = 1)", reason: "expected AND, OR or the end, found \")\"", position: 5 },
  { type: "SQL92", expression: "()", reason: "expected a condition, found \")\"", position: 1 },
  { type: "SQL92", expression: "a", reason: "expected a comparison, BETWEEN, IN, IS", position: 1 },
  { type: "SQL92", expression: "a AND b = 1", reason: "expected a comparison, BETWEEN, IN, IS", position: 2 },
  { type: "SQL92", expression: "NOT", reason: "expected a condition, found the end of the expression", position: 3 },
  { type: "SQL92", expression: "a = 1 OR", reason: "expected a condition, found the end of the expression", position: 8 },
  { type: "SQL92", expression: "a NOT LIKE 'x'", reason: "expected BETWEEN, IN, CONTAINS, STARTSWITH or ENDSWITH after NOT", position: 6 },
  { type: "SQL92", expression: "a != 1", reason: "unsupported operator != (use <>)", position: 2 },
  { type: "SQL92", expression: "a == 1", reason: "unsupported operator == (use =)", position: 2 },
  { type: "SQL92", expression: "a = 'open", reason: "unterminated string literal", position: 4 },
  { type: "SQL92", expression: "a = 1e999", reason: "number 1e999 is out of range", position: 4 },
  { type: "SQL92", expression: "a # 1", reason: "unexpected character \"#\"", position: 2 },
  { type: "SQL92", expression: "région = 'x'", reason: "unexpected character \"é\"", position: 1 },
  { type: "SQL92", expression: "a = - b", reason: "expected a number after -", position: 6 },
  { type: "SQL92", expression: "5 CONTAINS 'x'", reason: "CONTAINS needs a property or a string on its left, found a number", position: 0 },
  { type: "SQL92", expression: "a STARTSWITH b", reason: "expected a string literal after STARTSWITH", position: 13 },
  { type: "SQL92", expression: "a = 1 -- comment", reason: "expected AND, OR or the end, found \"-\"", position: 6 },
  { type: "SQL92", expression: `a = '${"x".repeat(4092)}'`, reason: "4098 characters, the maximum is 4096", position: 4096 },
  {
    type: "SQL92",
    expression: `${"(".repeat(65)}a = 1${")".repeat(65)}`,
    reason: "nest deeper than 64 levels",
    position: 64
  },
  { type: "SQL92", expression: `${"NOT ".repeat(65)}a = 1`, reason: "nest deeper than 64 levels", position: 256 },
  { type: "SQL92", expression: `${"NOT (".repeat(33)}a = 1${")".repeat(33)}`, reason: "nest deeper than 64 levels", position: 160 }
]

describe("illegal expressions", () => {
  for (const row of badRows) {
    const shown = row.expression.length > 40 ? `${row.expression.slice(0, 40)}…` : row.expression
    it(`${row.type} ${JSON.stringify(shown)} is illegal: ${row.reason}`, () => {
      const error = failure(row.type, row.expression)
      assert.strictEqual(error._tag, "IllegalFilterExpression")
      assert.strictEqual(error.type, row.type)
      assert.strictEqual(error.expression, row.expression)
      assert.include(error.reason, row.reason)
      assert.strictEqual(error.position, row.position)
      assert.include(error.message, `at position ${row.position}`)
    })
  }

  it("64 levels of parentheses are accepted", () => {
    const filter = compiled("SQL92", `${"(".repeat(64)}a = 1${")".repeat(64)}`)
    assert.isTrue(filter.matches({ properties: { a: "1" } }))
  })

  it("64 nested NOTs are accepted", () => {
    const filter = compiled("SQL92", `${"NOT ".repeat(64)}a = 1`)
    assert.isTrue(filter.matches({ properties: { a: "1" } }))
  })

  it("an expression of exactly the maximum length is accepted", () => {
    const expression = `a = '${"x".repeat(Filter.maxExpressionLength - 6)}'`
    assert.strictEqual(expression.length, Filter.maxExpressionLength)
    assert.isTrue(compiled("SQL92", expression).matches({ properties: { a: "x".repeat(Filter.maxExpressionLength - 6) } }))
  })

  it("a long chain of ANDs is neither a nesting problem nor a deep evaluation", () => {
    const expression = Array.from({ length: 250 }, (_, i) => `p${i % 10} IS NULL`).join(" AND ")
    assert.isTrue(compiled("SQL92", expression).matches({ properties: {} }))
  })
})

describe("parse", () => {
  it.effect("succeeds with the compiled filter", () =>
    Effect.gen(function*() {
      const filter = yield* Filter.parse({ type: "SQL92", expression: "price > 20" })
      assert.isTrue(filter.matches({ properties: { price: "21" } }))
    }))

  it.effect("fails with IllegalFilterExpression in the error channel", () =>
    Effect.gen(function*() {
      const error = yield* Effect.flip(Filter.parse({ type: "TAG", expression: "A ||" }))
      assert.strictEqual(error._tag, "IllegalFilterExpression")
      assert.strictEqual(error.position, 4)
    }))
})

// ---------------------------------------------------------------------------------------------
// Properties
// ---------------------------------------------------------------------------------------------

// A reference interpreter of the documented semantics, written for clarity rather than speed: the
// compiled closures must agree with it on every message.
type RefValue =
  | { readonly kind: "string"; readonly value: string }
  | { readonly kind: "number"; readonly text: string }
  | { readonly kind: "boolean"; readonly value: boolean }
  | null

const numericPattern = /^[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?$/
const integerPattern = /^[+-]?\d+$/

const refNumber = (value: Exclude<RefValue, null>): string | null =>
  value.kind === "number" ? value.text : value.kind === "string" && numericPattern.test(value.value) ? value.value : null

const refOrder = (a: string, b: string): number => {
  if (integerPattern.test(a) && integerPattern.test(b)) {
    const x = BigInt(a)
    const y = BigInt(b)
    return x < y ? -1 : x > y ? 1 : 0
  }
  return Math.sign(Number(a) - Number(b)) || 0
}

const refHolds = (operator: Filter.SqlComparison, order: number): boolean =>
  operator === "=" ? order === 0
  : operator === "<>" ? order !== 0
  : operator === ">" ? order > 0
  : operator === ">=" ? order >= 0
  : operator === "<" ? order < 0
  : order <= 0

const refValue = (value: Filter.SqlValue, message: Filter.FilterMessage): RefValue => {
  switch (value._tag) {
    case "Property": {
      const text = value.name === "TAGS" ? message.tag : Object.hasOwn(message.properties, value.name) ? message.properties[value.name] : undefined
      return text === undefined ? null : { kind: "string", value: text }
    }
    case "String":
      return { kind: "string", value: value.value }
    case "Number":
      return { kind: "number", text: value.text }
    case "Boolean":
      return { kind: "boolean", value: value.value }
  }
}

const refBoolean = (text: string): boolean | null =>
  text.toLowerCase() === "true" ? true : text.toLowerCase() === "false" ? false : null

const refCompare = (operator: Filter.SqlComparison, left: RefValue, right: RefValue): boolean | null => {
  if (left === null || right === null) return null
  if (operator !== "=" && operator !== "<>" || left.kind === "number" || right.kind === "number") {
    const a = refNumber(left)
    const b = refNumber(right)
    return a === null || b === null ? null : refHolds(operator, refOrder(a, b))
  }
  if (left.kind === "string" && right.kind === "string") return refHolds(operator, left.value === right.value ? 0 : 1)
  const a = left.kind === "boolean" ? left.value : refBoolean(left.value)
  const b = right.kind === "boolean" ? right.value : refBoolean(right.value)
  return a === null || b === null ? null : refHolds(operator, a === b ? 0 : 1)
}

const refAnd = (a: boolean | null, b: boolean | null) => a === false || b === false ? false : a === null || b === null ? null : true
const refOr = (a: boolean | null, b: boolean | null) => a === true || b === true ? true : a === null || b === null ? null : false
const refNot = (a: boolean | null) => a === null ? null : !a

const refEvaluate = (predicate: Filter.SqlPredicate, message: Filter.FilterMessage): boolean | null => {
  switch (predicate._tag) {
    case "Or":
      return predicate.operands.map((p) => refEvaluate(p, message)).reduce(refOr, false)
    case "And":
      return predicate.operands.map((p) => refEvaluate(p, message)).reduce(refAnd, true)
    case "Not":
      return refNot(refEvaluate(predicate.operand, message))
    case "Constant":
      return predicate.value
    case "Compare":
      return refCompare(predicate.operator, refValue(predicate.left, message), refValue(predicate.right, message))
    case "Between": {
      const value = refValue(predicate.value, message)
      const low = refValue(predicate.low, message)
      const high = refValue(predicate.high, message)
      const inside = refAnd(refCompare(">=", value, low), refCompare("<=", value, high))
      return predicate.negated ? refOr(refCompare("<", value, low), refCompare(">", value, high)) : inside
    }
    case "In": {
      const value = refValue({ _tag: "Property", name: predicate.property }, message)
      return value === null || value.kind !== "string" ? null : predicate.values.includes(value.value) !== predicate.negated
    }
    case "IsNull":
      return (refValue(predicate.value, message) === null) !== predicate.negated
    case "StringMatch": {
      const value = refValue(predicate.value, message)
      if (value === null || value.kind !== "string") return null
      const hit = predicate.operator === "CONTAINS"
        ? value.value.includes(predicate.pattern)
        : predicate.operator === "STARTSWITH"
        ? value.value.startsWith(predicate.pattern)
        : value.value.endsWith(predicate.pattern)
      return hit !== predicate.negated
    }
  }
}

const propertyNames = ["a", "b", "price", "x_1", "$y"] as const
const propertyValues = [
  "0", "1", "2", "10", "10.0", "-3", "2.5", "1e2", ".5", "-0", "9007199254740992", "9007199254740993",
  "", "abc", "it's", "true", "TRUE", "false", "x y"
]
const messageArb: fc.Arbitrary<Filter.FilterMessage> = fc.record({
  tag: fc.option(fc.constantFrom("A", "B", "1", "true"), { nil: undefined }),
  properties: fc.record(
    Object.fromEntries(propertyNames.map((name) => [name, fc.constantFrom(...propertyValues)])),
    { requiredKeys: [] }
  ) as fc.Arbitrary<Record<string, string>>
})

const property: fc.Arbitrary<Filter.SqlValue> = fc.constantFrom(...propertyNames, "TAGS").map((name) => ({ _tag: "Property", name }))
const numberLiteral: fc.Arbitrary<Filter.SqlValue> = fc.constantFrom(
  "0", "1", "2", "10", "-3", "2.5", "1e2", ".5", "-0", "9007199254740992", "9007199254740993"
).map((text) => ({ _tag: "Number", text }))
const stringLiteral: fc.Arbitrary<Filter.SqlValue> = fc.constantFrom("", "a", "1", "10", "it's", "true", "x y")
  .map((value) => ({ _tag: "String", value }))
const booleanLiteral: fc.Arbitrary<Filter.SqlValue> = fc.boolean().map((value) => ({ _tag: "Boolean", value }))
const numeric = fc.oneof(property, numberLiteral)
const textual = fc.oneof(property, stringLiteral)
const anyValue = fc.oneof(property, numberLiteral, stringLiteral, booleanLiteral)
const patternArb = fc.constantFrom("", "a", "b", "'", "1", "x y")

const comparison: fc.Arbitrary<Filter.SqlPredicate> = fc.oneof(
  fc.record({ operator: fc.constantFrom(">", ">=", "<", "<=" as const), left: numeric, right: numeric }),
  fc.record({ operator: fc.constantFrom("=", "<>" as const), left: anyValue, right: anyValue }).filter(({ left, right }) =>
    !(left._tag === "Boolean" && right._tag === "Number") && !(left._tag === "Number" && right._tag === "Boolean")
  )
).map(({ left, operator, right }) => ({ _tag: "Compare", operator, left, right }))

const between: fc.Arbitrary<Filter.SqlPredicate> = fc.record({ negated: fc.boolean(), value: numeric, low: numeric, high: numeric })
  .map(({ high, low, negated, value }) =>
    low._tag === "Number" && high._tag === "Number" && refOrder(low.text, high.text) > 0
      ? { _tag: "Between", negated, value, low: high, high: low }
      : { _tag: "Between", negated, value, low, high }
  )

const leaf: fc.Arbitrary<Filter.SqlPredicate> = fc.oneof(
  comparison,
  between,
  fc.record({
    _tag: fc.constant("In" as const),
    negated: fc.boolean(),
    property: fc.constantFrom(...propertyNames, "TAGS"),
    values: fc.array(fc.constantFrom("A", "1", "10", "abc", "it's", ""), { minLength: 1, maxLength: 4 })
  }),
  fc.record({ _tag: fc.constant("IsNull" as const), negated: fc.boolean(), value: anyValue }),
  fc.record({
    _tag: fc.constant("StringMatch" as const),
    operator: fc.constantFrom("CONTAINS", "STARTSWITH", "ENDSWITH" as const),
    negated: fc.boolean(),
    value: textual,
    pattern: patternArb
  }),
  fc.record({ _tag: fc.constant("Constant" as const), value: fc.boolean() })
)

const { predicate: predicateArb } = fc.letrec<{ predicate: Filter.SqlPredicate }>((tie) => ({
  predicate: fc.oneof(
    { maxDepth: 5, depthIdentifier: "predicate" },
    leaf,
    tie("predicate").map((operand): Filter.SqlPredicate => ({ _tag: "Not", operand })),
    fc.array(tie("predicate"), { minLength: 2, maxLength: 4, depthIdentifier: "predicate" })
      .map((operands): Filter.SqlPredicate => ({ _tag: "And", operands })),
    fc.array(tie("predicate"), { minLength: 2, maxLength: 4, depthIdentifier: "predicate" })
      .map((operands): Filter.SqlPredicate => ({ _tag: "Or", operands }))
  )
}))

const tokenSoup = fc.array(
  fc.constantFrom(
    "a", "b", "TAGS", "'x'", "'it''s'", "'", "1", "-2.5", "1e3", ".", "(", ")", "=", "<>", "<", ">=", "!=", ",", "-",
    "AND", "OR", "NOT", "BETWEEN", "IN", "IS", "NULL", "TRUE", "false", "CONTAINS", "||", "*", "|", " ", "\u0000", "é"
  ),
  { maxLength: 24 }
).map((tokens) => tokens.join(" "))

const isFilterOrTypedError = (type: Filter.FilterType, expression: string, message: Filter.FilterMessage): boolean => {
  const result = Filter.compile({ type, expression })
  if (Result.isFailure(result)) return result.failure._tag === "IllegalFilterExpression" && result.failure.expression === expression
  return typeof result.success.matches(message) === "boolean"
}

describe("filters under fast-check", () => {
  it("any string gives a filter or IllegalFilterExpression, never a throw", () => {
    fc.assert(
      fc.property(fc.constantFrom("TAG", "SQL92" as const), fc.oneof(fc.string(), fc.string({ unit: "binary" }), tokenSoup), messageArb, isFilterOrTypedError),
      { seed: 42, numRuns: 5_000 }
    )
  })

  it("a flat chain of conditions groups NOT first, then AND, then OR", () => {
    const link = fc.record({ negated: fc.boolean(), condition: leaf, connector: fc.constantFrom("AND", "OR", "and", "or") })
    fc.assert(
      fc.property(fc.array(link, { minLength: 1, maxLength: 8 }), fc.array(messageArb, { minLength: 1, maxLength: 8 }), (links, messages) => {
        const text = links.map(({ condition, connector, negated }, i) =>
          `${i === 0 ? "" : ` ${connector} `}${negated ? "NOT " : ""}${Filter.printSql(condition)}`
        ).join("")
        const filter = compiled("SQL92", text)
        // the reference groups by hand: split at every OR, AND the conditions of each group
        return messages.every((message) => {
          const groups: Array<Array<boolean | null>> = [[]]
          links.forEach(({ condition, connector, negated }, i) => {
            if (i > 0 && connector.toUpperCase() === "OR") groups.push([])
            const truth = refEvaluate(condition, message)
            groups[groups.length - 1]!.push(negated ? refNot(truth) : truth)
          })
          const expected = groups.map((group) => group.reduce(refAnd, true)).reduce(refOr, false)
          return filter.matches(message) === (expected === true)
        })
      }),
      { seed: 42, numRuns: 2_000 }
    )
  })

  it("a well-formed tree printed to text parses back to the same tree", () => {
    fc.assert(
      fc.property(predicateArb, (predicate) => {
        assert.deepStrictEqual(Result.getOrThrow(Filter.parseSql(Filter.printSql(predicate))), predicate)
      }),
      { seed: 42, numRuns: 2_000 }
    )
  })

  it("a well-formed tree printed to text compiles to a filter that agrees with the tree on every message", () => {
    fc.assert(
      fc.property(predicateArb, fc.array(messageArb, { minLength: 1, maxLength: 8 }), (predicate, messages) => {
        const filter = compiled("SQL92", Filter.printSql(predicate))
        return messages.every((message) => filter.matches(message) === (refEvaluate(predicate, message) === true))
      }),
      { seed: 42, numRuns: 2_000 }
    )
  })
})
