/**
 * Subscription filters: the TAG or SQL92 expression a consumer subscribes with, compiled once per
 * subscription into a predicate the broker runs on every candidate message.
 *
 * A tag expression is `*` (or blank) for every message, tagged or not, or tag names joined by `||`
 * for messages carrying one of them; names are case-sensitive and whitespace around them is
 * ignored. {@link tagHash} gives the hash the broker keeps in its index, so a {@link Filter}'s
 * `acceptsTagHash` can reject a message before it is read.
 *
 * A SQL92 expression is RocketMQ's selector language over the message's user properties and its
 * tag (`TAGS`): comparisons `= <> > >= < <=`, `[NOT] BETWEEN`, `[NOT] IN`, `IS [NOT] NULL`,
 * `[NOT] CONTAINS | STARTSWITH | ENDSWITH`, `AND`, `OR`, `NOT` and parentheses. Properties are
 * strings; the rules for comparing them follow RocketMQ:
 *
 * - a property compared with a number literal, or two properties compared with `> >= < <=`, are read
 *   as numbers; a value that is not a number makes the comparison unknown
 * - two strings compare by `=` and `<>` as strings, and never by `> >= < <=` (a string literal there
 *   is a syntax error)
 * - a missing property makes every comparison unknown, except `IS NULL`, which is true
 * - unknown spreads through `NOT`, `AND` and `OR` as in SQL (`NOT unknown` is unknown, `unknown OR
 *   true` is true) and a message matches only when the whole expression is true
 *
 * Where this differs from RocketMQ's Java filter it is on purpose: `NOT` binds looser than a
 * comparison (`NOT a = 1` is `NOT (a = 1)`, as in SQL), a number that fails to parse makes only its
 * comparison unknown instead of failing the whole evaluation, `"1.0" = 1` holds (both read as
 * numbers), a bare property or a `NULL` outside `IS [NOT] NULL` is rejected instead of never
 * matching, and comments are not accepted.
 *
 * @since 0.1.0
 */
import { Effect, Result, Schema } from "effect"
import { Topic } from "@strait/core"

// ---------------------------------------------------------------------------------------------
// Limits and errors
// ---------------------------------------------------------------------------------------------

/**
 * The longest filter expression accepted, in UTF-16 code units.
 *
 * @since 0.1.0
 */
export const maxExpressionLength = 4096

/**
 * How deeply parentheses and `NOT`s may nest in a SQL92 expression.
 *
 * **Details**
 *
 * The limit keeps parsing, compiling and evaluating well inside the stack whatever a client sends.
 *
 * @since 0.1.0
 */
export const maxNestingDepth = 64

/**
 * The kind of a filter expression, as a subscription names it.
 *
 * @since 0.1.0
 */
export type FilterType = "TAG" | "SQL92"

/**
 * A filter expression as a consumer subscribes with it.
 *
 * @since 0.1.0
 */
export interface FilterExpression {
  readonly type: FilterType
  readonly expression: string
}

/**
 * A filter expression the broker cannot accept (RocketMQ `ILLEGAL_FILTER_EXPRESSION`).
 *
 * **Details**
 *
 * `position` is the 0-based index in `expression` where the problem was found, when there is one.
 *
 * @since 0.1.0
 */
export class IllegalFilterExpression extends Schema.TaggedError<IllegalFilterExpression>()("IllegalFilterExpression", {
  type: Schema.Literals(["TAG", "SQL92"]),
  expression: Schema.String,
  reason: Schema.String,
  position: Schema.optionalKey(Schema.Int)
}) {
  override get message() {
    const shown = this.expression.length > 80 ? `${this.expression.slice(0, 80)}…` : this.expression
    const at = this.position === undefined ? "" : ` at position ${this.position}`
    return `illegal ${this.type} filter expression ${JSON.stringify(shown)}: ${this.reason}${at}`
  }
}

const illegal = (type: FilterType, expression: string, reason: string, position: number | undefined) =>
  new IllegalFilterExpression(
    position === undefined ? { type, expression, reason } : { type, expression, reason, position }
  )

// ---------------------------------------------------------------------------------------------
// Filters
// ---------------------------------------------------------------------------------------------

/**
 * What a filter reads of a message: its tag and its user properties.
 *
 * @since 0.1.0
 */
export interface FilterMessage {
  readonly tag?: string | undefined
  readonly properties: Readonly<Record<string, string>>
}

/**
 * A compiled subscription filter.
 *
 * **Details**
 *
 * `tags` and `tagHashes` are the tags (and their {@link tagHash}es) a message must carry to pass,
 * or `"*"` when its tag does not decide, as for `*` and for every SQL92 filter. `acceptsTagHash`
 * answers from the index alone: `false` means the message cannot match; `true` means `matches`
 * must still decide, because different tags can share a hash.
 *
 * **When to use**
 *
 * Compile once per subscription with {@link compile} or {@link parse}, then call `matches` per
 * message: it runs no Effect and allocates nothing.
 *
 * @since 0.1.0
 */
export type Filter = TagFilter | SqlFilter

/**
 * A compiled tag expression.
 *
 * @since 0.1.0
 */
export interface TagFilter {
  readonly type: "TAG"
  readonly expression: string
  readonly tags: ReadonlySet<string> | "*"
  readonly tagHashes: ReadonlySet<number> | "*"
  readonly acceptsTagHash: (hash: number) => boolean
  readonly matches: (message: FilterMessage) => boolean
}

/**
 * A compiled SQL92 expression, with the syntax tree it was compiled from.
 *
 * @since 0.1.0
 */
export interface SqlFilter {
  readonly type: "SQL92"
  readonly expression: string
  readonly predicate: SqlPredicate
  readonly tags: "*"
  readonly tagHashes: "*"
  readonly acceptsTagHash: (hash: number) => boolean
  readonly matches: (message: FilterMessage) => boolean
}

const acceptEveryHash = (_hash: number): boolean => true

/**
 * The filter of a subscription without an expression: every message, tagged or not.
 *
 * @since 0.1.0
 */
export const matchAll: TagFilter = {
  type: "TAG",
  expression: "*",
  tags: "*",
  tagHashes: "*",
  acceptsTagHash: acceptEveryHash,
  matches: (_message) => true
}

/**
 * Compiles a filter expression, or tells why it is illegal.
 *
 * @since 0.1.0
 */
export const compile = (filter: FilterExpression): Result.Result<Filter, IllegalFilterExpression> => {
  if (filter.expression.length > maxExpressionLength) {
    return Result.fail(illegal(
      filter.type,
      filter.expression,
      `the expression has ${filter.expression.length} characters, the maximum is ${maxExpressionLength}`,
      maxExpressionLength
    ))
  }
  return filter.type === "TAG" ? compileTags(filter.expression) : compileSql(filter.expression)
}

/**
 * Compiles a filter expression, failing with {@link IllegalFilterExpression} when it is illegal.
 *
 * **Details**
 *
 * The Effect form of {@link compile}, for the subscription path.
 *
 * @since 0.1.0
 */
export const parse = (filter: FilterExpression): Effect.Effect<Filter, IllegalFilterExpression> =>
  Effect.fromResult(compile(filter))

// ---------------------------------------------------------------------------------------------
// Tags
// ---------------------------------------------------------------------------------------------

/**
 * The 32-bit FNV-1a hash of a tag's UTF-8 bytes, as the broker keeps it in its index
 * (`Topic.nameHash`).
 *
 * @since 0.1.0
 */
export const tagHash = Topic.nameHash

// RocketMQ trims tag names with Java's trim; only ASCII whitespace is trimmed here, so a control
// character is reported rather than silently dropped.
const isSpace = (code: number): boolean => code === 0x20 || (code >= 0x09 && code <= 0x0d)

// Java's Character.isISOControl, which RocketMQ applies to tags: C0 controls, DEL and C1 controls.
const controlCharacterAt = (text: string): number => {
  for (let i = 0; i < text.length; i++) {
    const code = text.charCodeAt(i)
    if (code <= 0x1f || (code >= 0x7f && code <= 0x9f)) return i
  }
  return -1
}

const compileTags = (expression: string): Result.Result<Filter, IllegalFilterExpression> => {
  const fail = (reason: string, position: number) => Result.fail(illegal("TAG", expression, reason, position))
  let first = 0
  let last = expression.length
  while (first < last && isSpace(expression.charCodeAt(first))) first++
  while (last > first && isSpace(expression.charCodeAt(last - 1))) last--
  if (first === last || (last - first === 1 && expression.charCodeAt(first) === 0x2a)) {
    return Result.succeed(expression === "*" ? matchAll : { ...matchAll, expression })
  }

  const tags = new Set<string>()
  let start = 0
  for (;;) {
    const separator = expression.indexOf("||", start)
    const end = separator === -1 ? expression.length : separator
    let from = start
    let to = end
    while (from < to && isSpace(expression.charCodeAt(from))) from++
    while (to > from && isSpace(expression.charCodeAt(to - 1))) to--
    if (from === to) {
      return fail(separator === -1 ? "expected a tag name after ||" : "expected a tag name before ||", from)
    }
    const name = expression.slice(from, to)
    if (name === "*") return fail("* cannot be combined with other tags", from)
    const bar = name.indexOf("|")
    if (bar !== -1) return fail(`tag ${JSON.stringify(name)} contains | (tags are separated by ||)`, from + bar)
    const control = controlCharacterAt(name)
    if (control !== -1) return fail(`tag ${JSON.stringify(name)} contains a control character`, from + control)
    tags.add(name)
    if (separator === -1) break
    start = separator + 2
  }

  const tagHashes = new Set<number>()
  for (const tag of tags) tagHashes.add(tagHash(tag))
  const filter: TagFilter = {
    type: "TAG",
    expression,
    tags,
    tagHashes,
    acceptsTagHash: (hash) => tagHashes.has(hash),
    matches: (message) => message.tag !== undefined && tags.has(message.tag)
  }
  return Result.succeed(filter)
}

// ---------------------------------------------------------------------------------------------
// SQL92: syntax tree
// ---------------------------------------------------------------------------------------------

/**
 * A value in a SQL92 expression: a property (`TAGS` is the message's tag) or a literal.
 *
 * **Details**
 *
 * A number keeps the text it was written with (sign folded in), so large integers compare exactly.
 *
 * @since 0.1.0
 */
export type SqlValue =
  | { readonly _tag: "Property"; readonly name: string }
  | { readonly _tag: "String"; readonly value: string }
  | { readonly _tag: "Number"; readonly text: string }
  | { readonly _tag: "Boolean"; readonly value: boolean }

/**
 * A comparison operator of SQL92 filters.
 *
 * @since 0.1.0
 */
export type SqlComparison = "=" | "<>" | ">" | ">=" | "<" | "<="

/**
 * A string operator of SQL92 filters.
 *
 * @since 0.1.0
 */
export type SqlStringMatch = "CONTAINS" | "STARTSWITH" | "ENDSWITH"

/**
 * The syntax tree of a SQL92 filter expression.
 *
 * **Details**
 *
 * `And` and `Or` hold every operand of one chain (`a AND b AND c`), so evaluation depth follows
 * nesting, not length. `Constant` is a bare `TRUE` or `FALSE`.
 *
 * @since 0.1.0
 */
export type SqlPredicate =
  | { readonly _tag: "Or"; readonly operands: ReadonlyArray<SqlPredicate> }
  | { readonly _tag: "And"; readonly operands: ReadonlyArray<SqlPredicate> }
  | { readonly _tag: "Not"; readonly operand: SqlPredicate }
  | { readonly _tag: "Constant"; readonly value: boolean }
  | { readonly _tag: "Compare"; readonly operator: SqlComparison; readonly left: SqlValue; readonly right: SqlValue }
  | {
    readonly _tag: "Between"
    readonly negated: boolean
    readonly value: SqlValue
    readonly low: SqlValue
    readonly high: SqlValue
  }
  | { readonly _tag: "In"; readonly negated: boolean; readonly property: string; readonly values: ReadonlyArray<string> }
  | { readonly _tag: "IsNull"; readonly negated: boolean; readonly value: SqlValue }
  | {
    readonly _tag: "StringMatch"
    readonly operator: SqlStringMatch
    readonly negated: boolean
    readonly value: SqlValue
    readonly pattern: string
  }

/**
 * Prints a SQL92 syntax tree as an expression that parses back to the same tree.
 *
 * @since 0.1.0
 */
export const printSql = (predicate: SqlPredicate): string => {
  switch (predicate._tag) {
    case "Or":
      return predicate.operands.map((operand) => operand._tag === "Or" ? `(${printSql(operand)})` : printSql(operand))
        .join(" OR ")
    case "And":
      return predicate.operands.map((operand) =>
        operand._tag === "Or" || operand._tag === "And" ? `(${printSql(operand)})` : printSql(operand)
      ).join(" AND ")
    case "Not": {
      const operand = predicate.operand
      return operand._tag === "Or" || operand._tag === "And" ? `NOT (${printSql(operand)})` : `NOT ${printSql(operand)}`
    }
    case "Constant":
      return predicate.value ? "TRUE" : "FALSE"
    case "Compare":
      return `${printValue(predicate.left)} ${predicate.operator} ${printValue(predicate.right)}`
    case "Between":
      return `${printValue(predicate.value)} ${predicate.negated ? "NOT " : ""}BETWEEN ${printValue(predicate.low)} AND ${
        printValue(predicate.high)
      }`
    case "In":
      return `${predicate.property} ${predicate.negated ? "NOT " : ""}IN (${predicate.values.map(quote).join(", ")})`
    case "IsNull":
      return `${printValue(predicate.value)} IS ${predicate.negated ? "NOT " : ""}NULL`
    case "StringMatch":
      return `${printValue(predicate.value)} ${predicate.negated ? "NOT " : ""}${predicate.operator} ${
        quote(predicate.pattern)
      }`
  }
}

const quote = (text: string): string => `'${text.replaceAll("'", "''")}'`

const printValue = (value: SqlValue): string => {
  switch (value._tag) {
    case "Property":
      return value.name
    case "String":
      return quote(value.value)
    case "Number":
      return value.text
    case "Boolean":
      return value.value ? "TRUE" : "FALSE"
  }
}

// ---------------------------------------------------------------------------------------------
// SQL92: tokens
// ---------------------------------------------------------------------------------------------

type TokenKind = "identifier" | "keyword" | "string" | "number" | "symbol" | "end"

interface Token {
  readonly kind: TokenKind
  /** The keyword in upper case, the decoded string, the number as written, the symbol or the name. */
  readonly text: string
  readonly position: number
}

const keywords: ReadonlySet<string> = new Set([
  "NOT", "AND", "OR", "BETWEEN", "IN", "TRUE", "FALSE", "NULL", "IS", "CONTAINS", "STARTSWITH", "ENDSWITH"
])

// Thrown inside the parser only and caught by parseSql, so every rule can stop at its first error
// without threading results through the descent.
class SyntaxFailure {
  readonly reason: string
  readonly position: number
  constructor(reason: string, position: number) {
    this.reason = reason
    this.position = position
  }
}

const isDigit = (code: number): boolean => code >= 0x30 && code <= 0x39
const isIdentifierStart = (code: number): boolean =>
  (code >= 0x61 && code <= 0x7a) || (code >= 0x41 && code <= 0x5a) || code === 0x5f || code === 0x24
const isIdentifierPart = (code: number): boolean => isIdentifierStart(code) || isDigit(code)

const tokenize = (text: string): ReadonlyArray<Token> => {
  const tokens: Array<Token> = []
  const length = text.length
  let i = 0
  while (i < length) {
    const code = text.charCodeAt(i)
    if (isSpace(code)) {
      i++
      continue
    }
    const start = i
    if (isIdentifierStart(code)) {
      while (i < length && isIdentifierPart(text.charCodeAt(i))) i++
      const word = text.slice(start, i)
      const upper = word.toUpperCase()
      tokens.push(keywords.has(upper)
        ? { kind: "keyword", text: upper, position: start }
        : { kind: "identifier", text: word, position: start })
    } else if (isDigit(code) || (code === 0x2e && isDigit(text.charCodeAt(i + 1)))) {
      while (i < length && isDigit(text.charCodeAt(i))) i++
      if (text.charCodeAt(i) === 0x2e) {
        i++
        while (i < length && isDigit(text.charCodeAt(i))) i++
      }
      if ((text.charCodeAt(i) | 0x20) === 0x65) {
        // an exponent only when digits follow; otherwise the number ends before the `e`
        const sign = text.charCodeAt(i + 1) === 0x2b || text.charCodeAt(i + 1) === 0x2d ? 1 : 0
        if (isDigit(text.charCodeAt(i + 1 + sign))) {
          i += 1 + sign
          while (i < length && isDigit(text.charCodeAt(i))) i++
        }
      }
      const literal = text.slice(start, i)
      if (!Number.isFinite(Number(literal))) throw new SyntaxFailure(`number ${literal} is out of range`, start)
      tokens.push({ kind: "number", text: literal, position: start })
    } else if (code === 0x27) {
      let value = ""
      let from = ++i
      for (;;) {
        if (i >= length) throw new SyntaxFailure("unterminated string literal", start)
        if (text.charCodeAt(i) === 0x27) {
          value += text.slice(from, i)
          if (text.charCodeAt(i + 1) !== 0x27) break
          value += "'"
          i += 2
          from = i
        } else {
          i++
        }
      }
      i++
      tokens.push({ kind: "string", text: value, position: start })
    } else {
      const two = text.slice(i, i + 2)
      if (two === "<>" || two === "<=" || two === ">=") {
        i += 2
        tokens.push({ kind: "symbol", text: two, position: start })
      } else if (two === "!=" || two === "==") {
        throw new SyntaxFailure(`unsupported operator ${two} (use ${two === "!=" ? "<>" : "="})`, start)
      } else if ("()=<>,+-".includes(text[i]!)) {
        i++
        tokens.push({ kind: "symbol", text: text[start]!, position: start })
      } else {
        const character = String.fromCodePoint(text.codePointAt(i)!)
        throw new SyntaxFailure(`unexpected character ${JSON.stringify(character)}`, start)
      }
    }
  }
  tokens.push({ kind: "end", text: "", position: length })
  return tokens
}

const describe = (token: Token): string => {
  switch (token.kind) {
    case "end":
      return "the end of the expression"
    case "keyword":
      return token.text
    case "string":
      return token.text.length > 20 ? `'${token.text.slice(0, 20)}…'` : quote(token.text)
    default:
      return JSON.stringify(token.text)
  }
}

// ---------------------------------------------------------------------------------------------
// SQL92: parser
// ---------------------------------------------------------------------------------------------

/**
 * Parses a SQL92 filter expression into its syntax tree, or tells why it is illegal.
 *
 * @since 0.1.0
 */
export const parseSql = (expression: string): Result.Result<SqlPredicate, IllegalFilterExpression> => {
  if (expression.length > maxExpressionLength) {
    return Result.fail(illegal(
      "SQL92",
      expression,
      `the expression has ${expression.length} characters, the maximum is ${maxExpressionLength}`,
      maxExpressionLength
    ))
  }
  try {
    return Result.succeed(new SqlParser(tokenize(expression)).parseExpression())
  } catch (failure) {
    if (failure instanceof SyntaxFailure) {
      return Result.fail(illegal("SQL92", expression, failure.reason, failure.position))
    }
    throw failure
  }
}

const comparisons: ReadonlySet<string> = new Set(["=", "<>", ">", ">=", "<", "<="])
const stringMatches: ReadonlySet<string> = new Set(["CONTAINS", "STARTSWITH", "ENDSWITH"])

const valueKind = (value: SqlValue): string => {
  switch (value._tag) {
    case "Property":
      return `property ${value.name}`
    case "String":
      return "a string"
    case "Number":
      return "a number"
    case "Boolean":
      return "a boolean"
  }
}

class SqlParser {
  readonly #tokens: ReadonlyArray<Token>
  #index = 0
  #depth = 0

  constructor(tokens: ReadonlyArray<Token>) {
    this.#tokens = tokens
  }

  parseExpression(): SqlPredicate {
    if (this.#peek().kind === "end") throw new SyntaxFailure("the expression is empty", 0)
    const predicate = this.#parseOr()
    const next = this.#peek()
    if (next.kind !== "end") throw new SyntaxFailure(`expected AND, OR or the end, found ${describe(next)}`, next.position)
    return predicate
  }

  #peek(): Token {
    return this.#tokens[this.#index]!
  }

  #next(): Token {
    const token = this.#tokens[this.#index]!
    if (token.kind !== "end") this.#index++
    return token
  }

  #isKeyword(text: string, token: Token = this.#peek()): boolean {
    return token.kind === "keyword" && token.text === text
  }

  #isSymbol(text: string, token: Token = this.#peek()): boolean {
    return token.kind === "symbol" && token.text === text
  }

  #expect(accept: (token: Token) => boolean, expected: string): Token {
    const token = this.#peek()
    if (!accept(token)) throw new SyntaxFailure(`expected ${expected}, found ${describe(token)}`, token.position)
    return this.#next()
  }

  #enter(at: Token): void {
    if (++this.#depth > maxNestingDepth) {
      throw new SyntaxFailure(`parentheses and NOT nest deeper than ${maxNestingDepth} levels`, at.position)
    }
  }

  #parseOr(): SqlPredicate {
    const first = this.#parseAnd()
    if (!this.#isKeyword("OR")) return first
    const operands = [first]
    while (this.#isKeyword("OR")) {
      this.#next()
      operands.push(this.#parseAnd())
    }
    return { _tag: "Or", operands }
  }

  #parseAnd(): SqlPredicate {
    const first = this.#parseNot()
    if (!this.#isKeyword("AND")) return first
    const operands = [first]
    while (this.#isKeyword("AND")) {
      this.#next()
      operands.push(this.#parseNot())
    }
    return { _tag: "And", operands }
  }

  #parseNot(): SqlPredicate {
    const token = this.#peek()
    if (!this.#isKeyword("NOT", token)) return this.#parsePrimary()
    this.#enter(token)
    this.#next()
    const operand = this.#parseNot()
    this.#depth--
    return { _tag: "Not", operand }
  }

  #parsePrimary(): SqlPredicate {
    const token = this.#peek()
    if (this.#isSymbol("(", token)) {
      this.#enter(token)
      this.#next()
      const inner = this.#parseOr()
      this.#expect((t) => this.#isSymbol(")", t), "AND, OR or )")
      this.#depth--
      return inner
    }
    const value = this.#parseValue("a condition")
    return this.#parseCondition(value, token)
  }

  #parseValue(expected: string): SqlValue {
    const token = this.#next()
    switch (token.kind) {
      case "identifier":
        return { _tag: "Property", name: token.text }
      case "string":
        return { _tag: "String", value: token.text }
      case "number":
        return { _tag: "Number", text: token.text }
      case "keyword":
        if (token.text === "TRUE" || token.text === "FALSE") return { _tag: "Boolean", value: token.text === "TRUE" }
        if (token.text === "NULL") {
          throw new SyntaxFailure("NULL is only allowed in IS NULL and IS NOT NULL", token.position)
        }
        break
      case "symbol":
        if (token.text === "-" || token.text === "+") {
          const number = this.#expect((t) => t.kind === "number", `a number after ${token.text}`)
          return { _tag: "Number", text: token.text === "-" ? `-${number.text}` : number.text }
        }
        break
    }
    throw new SyntaxFailure(`expected ${expected}, found ${describe(token)}`, token.position)
  }

  #parseCondition(value: SqlValue, valueToken: Token): SqlPredicate {
    const token = this.#peek()
    if (token.kind === "symbol" && comparisons.has(token.text)) {
      this.#next()
      const operator = token.text as SqlComparison
      const rightToken = this.#peek()
      const right = this.#parseValue("a value")
      if (operator === "=" || operator === "<>") {
        const booleanWithNumber = (value._tag === "Boolean" && right._tag === "Number") ||
          (value._tag === "Number" && right._tag === "Boolean")
        if (booleanWithNumber) throw new SyntaxFailure("a boolean cannot be compared with a number", token.position)
      } else {
        this.#checkNumeric(value, valueToken, operator)
        this.#checkNumeric(right, rightToken, operator)
      }
      return { _tag: "Compare", operator, left: value, right }
    }
    let negated = false
    if (this.#isKeyword("NOT", token)) {
      const after = this.#tokens[this.#index + 1]!
      const negatable = after.kind === "keyword" &&
        (after.text === "BETWEEN" || after.text === "IN" || stringMatches.has(after.text))
      if (!negatable) {
        throw new SyntaxFailure(
          `expected BETWEEN, IN, CONTAINS, STARTSWITH or ENDSWITH after NOT, found ${describe(after)}`,
          after.position
        )
      }
      this.#next()
      negated = true
    }
    const operatorToken = this.#peek()
    if (this.#isKeyword("BETWEEN", operatorToken)) {
      this.#next()
      this.#checkNumeric(value, valueToken, "BETWEEN")
      const lowToken = this.#peek()
      const low = this.#parseValue("a lower bound")
      this.#checkNumeric(low, lowToken, "BETWEEN")
      this.#expect((t) => this.#isKeyword("AND", t), "AND between the bounds of BETWEEN")
      const highToken = this.#peek()
      const high = this.#parseValue("an upper bound")
      this.#checkNumeric(high, highToken, "BETWEEN")
      const inverted = low._tag === "Number" && high._tag === "Number" &&
        compareNumbers(Number(low.text), low.text, Number(high.text), high.text) > 0
      if (inverted) {
        throw new SyntaxFailure(
          `the lower bound ${low.text} of BETWEEN is greater than its upper bound ${high.text}`,
          lowToken.position
        )
      }
      return { _tag: "Between", negated, value, low, high }
    }
    if (this.#isKeyword("IN", operatorToken)) {
      this.#next()
      if (value._tag !== "Property") {
        throw new SyntaxFailure(`IN needs a property on its left, found ${valueKind(value)}`, valueToken.position)
      }
      this.#expect((t) => this.#isSymbol("(", t), "( after IN")
      const values = [this.#expect((t) => t.kind === "string", "a string literal in the IN list").text]
      while (this.#isSymbol(",")) {
        this.#next()
        values.push(this.#expect((t) => t.kind === "string", "a string literal in the IN list").text)
      }
      this.#expect((t) => this.#isSymbol(")", t), ", or ) in the IN list")
      return { _tag: "In", negated, property: value.name, values }
    }
    if (operatorToken.kind === "keyword" && stringMatches.has(operatorToken.text)) {
      this.#next()
      if (value._tag !== "Property" && value._tag !== "String") {
        throw new SyntaxFailure(
          `${operatorToken.text} needs a property or a string on its left, found ${valueKind(value)}`,
          valueToken.position
        )
      }
      const pattern = this.#expect((t) => t.kind === "string", `a string literal after ${operatorToken.text}`).text
      return { _tag: "StringMatch", operator: operatorToken.text as SqlStringMatch, negated, value, pattern }
    }
    if (this.#isKeyword("IS", operatorToken)) {
      this.#next()
      const isNot = this.#isKeyword("NOT")
      if (isNot) this.#next()
      this.#expect((t) => this.#isKeyword("NULL", t), isNot ? "NULL after IS NOT" : "NULL or NOT NULL after IS")
      return { _tag: "IsNull", negated: isNot, value }
    }
    if (value._tag === "Boolean") return { _tag: "Constant", value: value.value }
    throw new SyntaxFailure(
      `expected a comparison, BETWEEN, IN, IS, CONTAINS, STARTSWITH or ENDSWITH after ${
        value._tag === "Property" ? value.name : valueKind(value)
      }, found ${describe(operatorToken)}`,
      operatorToken.position
    )
  }

  // RocketMQ compares only numbers by order: a string or boolean literal there can never hold.
  #checkNumeric(value: SqlValue, token: Token, operator: string): void {
    if (value._tag === "String" || value._tag === "Boolean") {
      throw new SyntaxFailure(`${valueKind(value)} cannot be compared with ${operator}, only numbers can`, token.position)
    }
  }
}

// ---------------------------------------------------------------------------------------------
// SQL92: compiling into closures
// ---------------------------------------------------------------------------------------------

// Kleene logic on small integers ordered False < Unknown < True: AND is the minimum, OR the
// maximum and NOT is 2 - x, so evaluation allocates nothing.
type Truth = 0 | 1 | 2
const False: Truth = 0
const Unknown: Truth = 1
const True: Truth = 2

type Evaluate = (message: FilterMessage) => Truth

/** A compiled operand: a string read from the message (or a string literal), a number or a boolean. */
type Operand =
  | { readonly kind: "text"; readonly read: (message: FilterMessage) => string | undefined; readonly constant: boolean }
  | { readonly kind: "number"; readonly value: number; readonly text: string }
  | { readonly kind: "boolean"; readonly value: boolean }

const compileSql = (expression: string): Result.Result<Filter, IllegalFilterExpression> =>
  Result.map(parseSql(expression), (predicate): Filter => {
    const evaluate = compilePredicate(predicate)
    return {
      type: "SQL92",
      expression,
      predicate,
      tags: "*",
      tagHashes: "*",
      acceptsTagHash: acceptEveryHash,
      matches: (message) => evaluate(message) === True
    }
  })

const noMessage: FilterMessage = { tag: undefined, properties: {} }

const readTag = (message: FilterMessage): string | undefined => message.tag

const readProperty = (name: string) => (message: FilterMessage): string | undefined => {
  const value = message.properties[name]
  // a name such as `constructor` must not find Object.prototype's member
  return typeof value === "string" ? value : undefined
}

const compileOperand = (value: SqlValue): Operand => {
  switch (value._tag) {
    case "Property":
      return { kind: "text", read: value.name === "TAGS" ? readTag : readProperty(value.name), constant: false }
    case "String": {
      const text = value.value
      return { kind: "text", read: () => text, constant: true }
    }
    case "Number":
      return { kind: "number", value: Number(value.text), text: value.text }
    case "Boolean":
      return { kind: "boolean", value: value.value }
  }
}

const isConstant = (operand: Operand): boolean => operand.kind !== "text" || operand.constant

// Literal-only parts are evaluated once here: they read nothing from the message.
const fold = (evaluate: Evaluate, constant: boolean): Evaluate => {
  if (!constant) return evaluate
  const truth = evaluate(noMessage)
  return () => truth
}

const compilePredicate = (predicate: SqlPredicate): Evaluate => {
  switch (predicate._tag) {
    case "Constant": {
      const truth = predicate.value ? True : False
      return () => truth
    }
    case "Not": {
      const operand = compilePredicate(predicate.operand)
      return (message) => (2 - operand(message)) as Truth
    }
    case "And":
      return compileAnd(predicate.operands.map(compilePredicate))
    case "Or":
      return compileOr(predicate.operands.map(compilePredicate))
    case "Compare":
      return compileCompare(predicate.operator, compileOperand(predicate.left), compileOperand(predicate.right))
    case "Between": {
      const value = compileOperand(predicate.value)
      const low = compileOperand(predicate.low)
      const high = compileOperand(predicate.high)
      return predicate.negated
        ? compileOr([compileCompare("<", value, low), compileCompare(">", value, high)])
        : compileAnd([compileCompare(">=", value, low), compileCompare("<=", value, high)])
    }
    case "In": {
      const read = predicate.property === "TAGS" ? readTag : readProperty(predicate.property)
      const values: ReadonlySet<string> = new Set(predicate.values)
      const inside = predicate.negated ? False : True
      const outside = predicate.negated ? True : False
      return (message) => {
        const text = read(message)
        return text === undefined ? Unknown : values.has(text) ? inside : outside
      }
    }
    case "IsNull": {
      const operand = compileOperand(predicate.value)
      const whenNull = predicate.negated ? False : True
      const whenPresent = predicate.negated ? True : False
      if (operand.kind !== "text" || operand.constant) return () => whenPresent
      const read = operand.read
      return (message) => read(message) === undefined ? whenNull : whenPresent
    }
    case "StringMatch": {
      const operand = compileOperand(predicate.value)
      if (operand.kind !== "text") return () => Unknown // the parser admits only properties and strings
      const read = operand.read
      const pattern = predicate.pattern
      const hit = predicate.negated ? False : True
      const miss = predicate.negated ? True : False
      const test = predicate.operator === "CONTAINS"
        ? (text: string) => text.includes(pattern)
        : predicate.operator === "STARTSWITH"
        ? (text: string) => text.startsWith(pattern)
        : (text: string) => text.endsWith(pattern)
      return fold((message) => {
        const text = read(message)
        return text === undefined ? Unknown : test(text) ? hit : miss
      }, operand.constant)
    }
  }
}

const compileAnd = (operands: ReadonlyArray<Evaluate>): Evaluate => {
  if (operands.length === 2) {
    const left = operands[0]!
    const right = operands[1]!
    return (message) => {
      const l = left(message)
      if (l === False) return False
      const r = right(message)
      return r < l ? r : l
    }
  }
  return (message) => {
    let result: Truth = True
    for (let i = 0; i < operands.length; i++) {
      const truth = operands[i]!(message)
      if (truth === False) return False
      if (truth < result) result = truth
    }
    return result
  }
}

const compileOr = (operands: ReadonlyArray<Evaluate>): Evaluate => {
  if (operands.length === 2) {
    const left = operands[0]!
    const right = operands[1]!
    return (message) => {
      const l = left(message)
      if (l === True) return True
      const r = right(message)
      return r > l ? r : l
    }
  }
  return (message) => {
    let result: Truth = False
    for (let i = 0; i < operands.length; i++) {
      const truth = operands[i]!(message)
      if (truth === True) return True
      if (truth > result) result = truth
    }
    return result
  }
}

const holds = (operator: SqlComparison, order: number): Truth => {
  switch (operator) {
    case "=":
      return order === 0 ? True : False
    case "<>":
      return order !== 0 ? True : False
    case ">":
      return order > 0 ? True : False
    case ">=":
      return order >= 0 ? True : False
    case "<":
      return order < 0 ? True : False
    case "<=":
      return order <= 0 ? True : False
  }
}

const mirrored: Readonly<Record<SqlComparison, SqlComparison>> = {
  "=": "=",
  "<>": "<>",
  ">": "<",
  ">=": "<=",
  "<": ">",
  "<=": ">="
}

const compileCompare = (operator: SqlComparison, left: Operand, right: Operand): Evaluate =>
  fold(compareOperands(operator, left, right), isConstant(left) && isConstant(right))

const compareOperands = (operator: SqlComparison, left: Operand, right: Operand): Evaluate => {
  // put a text operand on the left, so there is one case for each pair of kinds
  if (right.kind === "text" && left.kind !== "text") return compareOperands(mirrored[operator], right, left)
  if (left.kind === "number" && right.kind === "number") {
    const truth = holds(operator, compareNumbers(left.value, left.text, right.value, right.text))
    return () => truth
  }
  if (left.kind === "boolean" && right.kind === "boolean") {
    const truth = holds(operator, left.value === right.value ? 0 : 1)
    return () => truth
  }
  if (left.kind !== "text") return () => Unknown // boolean with number: the parser rejects it
  const read = left.read
  switch (right.kind) {
    case "number": {
      const { text: literalText, value: literal } = right
      return (message) => {
        const text = read(message)
        if (text === undefined) return Unknown
        const number = readNumber(text)
        return number !== number ? Unknown : holds(operator, compareNumbers(number, text, literal, literalText))
      }
    }
    case "boolean": {
      const literal = right.value
      return (message) => {
        const text = read(message)
        const value = text === undefined ? undefined : readBoolean(text)
        return value === undefined ? Unknown : holds(operator, value === literal ? 0 : 1)
      }
    }
    case "text": {
      const readRight = right.read
      if (operator === "=" || operator === "<>") {
        const same = operator === "=" ? True : False
        const different = operator === "=" ? False : True
        return (message) => {
          const l = read(message)
          if (l === undefined) return Unknown
          const r = readRight(message)
          return r === undefined ? Unknown : l === r ? same : different
        }
      }
      // order between two properties: both must read as numbers
      return (message) => {
        const l = read(message)
        const r = readRight(message)
        if (l === undefined || r === undefined) return Unknown
        const a = readNumber(l)
        const b = readNumber(r)
        return a !== a || b !== b ? Unknown : holds(operator, compareNumbers(a, l, b, r))
      }
    }
  }
}

// Java's Boolean.valueOf reads anything but "true" as false; here only "true" and "false" (in any
// case) are booleans, and anything else makes the comparison unknown.
const readBoolean = (text: string): boolean | undefined =>
  equalsIgnoringCase(text, "true") ? true : equalsIgnoringCase(text, "false") ? false : undefined

// `lower` is lower-case ASCII letters, for which `| 0x20` folds case without allocating a string.
const equalsIgnoringCase = (text: string, lower: string): boolean => {
  if (text.length !== lower.length) return false
  for (let i = 0; i < lower.length; i++) {
    if ((text.charCodeAt(i) | 0x20) !== lower.charCodeAt(i)) return false
  }
  return true
}

/**
 * How `text` reads as a number: 0 when it is not one, 1 for an integer, 2 with a fraction or an
 * exponent. The grammar is that of numeric literals with an optional sign, and no whitespace.
 */
const numberForm = (text: string): 0 | 1 | 2 => {
  const length = text.length
  let i = 0
  let code = text.charCodeAt(0)
  if (code === 0x2b || code === 0x2d) i++
  let digits = 0
  while (i < length && isDigit(text.charCodeAt(i))) {
    i++
    digits++
  }
  let form: 1 | 2 = 1
  if (i < length && text.charCodeAt(i) === 0x2e) {
    i++
    form = 2
    while (i < length && isDigit(text.charCodeAt(i))) {
      i++
      digits++
    }
  }
  if (digits === 0) return 0
  if (i < length && (text.charCodeAt(i) | 0x20) === 0x65) {
    i++
    form = 2
    code = text.charCodeAt(i)
    if (code === 0x2b || code === 0x2d) i++
    const exponent = i
    while (i < length && isDigit(text.charCodeAt(i))) i++
    if (i === exponent) return 0
  }
  return i === length ? form : 0
}

/** `text` as a number, or NaN when it is not one. */
const readNumber = (text: string): number => numberForm(text) === 0 ? Number.NaN : Number(text)

// Doubles order correctly whenever they differ; two integers beyond 2^53 can round to the same
// double, and only then are they compared exactly.
const compareNumbers = (a: number, aText: string, b: number, bText: string): number => {
  if (a < b) return -1
  if (a > b) return 1
  if (Math.abs(a) < Number.MAX_SAFE_INTEGER || numberForm(aText) !== 1 || numberForm(bText) !== 1) return 0
  const x = BigInt(aText)
  const y = BigInt(bText)
  return x < y ? -1 : x > y ? 1 : 0
}
