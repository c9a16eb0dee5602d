/**
 * A strict reader of the Prometheus text exposition format (version 0.0.4,
 * as the Prometheus documentation's "Exposition formats" page gives it), for
 * checks that a `/metrics` answer is what a Prometheus server can ingest.
 *
 * Written here rather than taken from npm: the one parser on the registry
 * (`parse-prometheus-text-format`) converts leniently into objects, where a
 * check needs every rule of the grammar enforced and each breach named with
 * its line. The format is small enough to read line by line:
 *
 * - lines end with LF, the last one too; empty lines are ignored; tokens are
 *   separated by blanks or tabs, leading and trailing whitespace ignored;
 * - `# HELP <name> <docstring>` (escapes `\\` and `\n` only) and
 *   `# TYPE <name> <counter|gauge|histogram|summary|untyped>`, at most one
 *   of each per name, before that name's first sample; any other line
 *   starting with `#` is a comment (an OpenMetrics `# UNIT` line is one);
 * - samples: `name[{label="value",...}] value [timestamp]`, the name
 *   `[a-zA-Z_:][a-zA-Z0-9_:]*`, label names `[a-zA-Z_][a-zA-Z0-9_]*` and not
 *   `__`-prefixed, label values with `\\`, `\"` and `\n` escapes, a trailing
 *   comma allowed; the value a Go float (`NaN`, `+Inf`, `-Inf` included),
 *   the timestamp an integer of milliseconds;
 * - all lines of one metric family in one group; no two samples with the
 *   same name and labels;
 * - a histogram `x`: `x_bucket` samples with an `le` label in increasing
 *   order with cumulative (non-decreasing) counts, one `le="+Inf"` equal to
 *   `x_count`, and `x_sum`; a summary `x`: `x{quantile=...}`, `x_sum`,
 *   `x_count`;
 * - counters and histogram counts are not negative.
 */

export type MetricType = "counter" | "gauge" | "histogram" | "summary" | "untyped"

export interface Sample {
  /** The sample's own name (`x_bucket`, `x_total`, ...). */
  readonly name: string
  readonly labels: Readonly<Record<string, string>>
  readonly value: number
  readonly line: number
}

export interface Family {
  readonly name: string
  readonly type: MetricType
  readonly help: string | undefined
  readonly samples: ReadonlyArray<Sample>
}

export type Parsed =
  | { readonly ok: true; readonly families: ReadonlyMap<string, Family>; readonly lines: number }
  | { readonly ok: false; readonly errors: ReadonlyArray<string> }

const metricName = /^[a-zA-Z_:][a-zA-Z0-9_:]*/
const labelName = /^[a-zA-Z_][a-zA-Z0-9_]*/
const types: ReadonlySet<string> = new Set(["counter", "gauge", "histogram", "summary", "untyped"])
const decimal = /^[+-]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?$/
const timestamp = /^-?\d+$/

/** A Go `ParseFloat` value as the format takes it; undefined when it is none. */
export const parseValue = (token: string): number | undefined => {
  if (decimal.test(token)) return Number(token)
  switch (token.toLowerCase()) {
    case "nan":
      return Number.NaN
    case "+inf":
    case "inf":
      return Infinity
    case "-inf":
      return -Infinity
  }
  return undefined
}

/** The key that makes a series unique: its name and labels, sorted. */
export const seriesKey = (name: string, labels: Readonly<Record<string, string>>): string =>
  `${name}{${Object.keys(labels).sort().map((key) => `${key}=${JSON.stringify(labels[key])}`).join(",")}}`

interface Building {
  readonly name: string
  type: MetricType | undefined
  help: string | undefined
  readonly samples: Array<Sample>
  /** Whether a sample of it has been seen (a TYPE after that is an error). */
  sampled: boolean
}

/** Which family a sample name belongs to, given the TYPE lines seen so far. */
const familyOf = (name: string, typed: ReadonlyMap<string, Building>): string => {
  if (typed.get(name)?.type !== undefined) return name
  for (const suffix of ["_bucket", "_sum", "_count"]) {
    if (!name.endsWith(suffix)) continue
    const base = name.slice(0, -suffix.length)
    const type = typed.get(base)?.type
    if (type === "histogram" || (type === "summary" && suffix !== "_bucket")) return base
  }
  return name
}

/** Reads one sample line; an error message when it breaks the grammar. */
const readSample = (text: string, lineNumber: number): Sample | string => {
  const name = metricName.exec(text)?.[0]
  if (name === undefined) return "a sample line must start with a metric name"
  let rest = text.slice(name.length)
  const labels: Record<string, string> = {}
  if (rest.startsWith("{")) {
    rest = rest.slice(1)
    for (;;) {
      rest = rest.replace(/^[ \t]+/, "")
      if (rest.startsWith("}")) {
        rest = rest.slice(1)
        break
      }
      const label = labelName.exec(rest)?.[0]
      if (label === undefined) return `bad label name at ${JSON.stringify(rest.slice(0, 20))}`
      if (label.startsWith("__")) return `label name ${label} is reserved (starts with __)`
      if (label in labels) return `label ${label} given twice`
      rest = rest.slice(label.length).replace(/^[ \t]+/, "")
      if (!rest.startsWith("=")) return `label ${label}: "=" expected`
      rest = rest.slice(1).replace(/^[ \t]+/, "")
      if (!rest.startsWith("\"")) return `label ${label}: a quoted value expected`
      let value = ""
      let i = 1
      let closed = false
      while (i < rest.length) {
        const char = rest[i] ?? ""
        if (char === "\\") {
          const next = rest[i + 1]
          if (next === "\\") value += "\\"
          else if (next === "\"") value += "\""
          else if (next === "n") value += "\n"
          else return `label ${label}: bad escape \\${next ?? ""} in its value`
          i += 2
        } else if (char === "\"") {
          closed = true
          i++
          break
        } else {
          value += char
          i++
        }
      }
      if (!closed) return `label ${label}: its value is not closed`
      labels[label] = value
      rest = rest.slice(i).replace(/^[ \t]+/, "")
      if (rest.startsWith(",")) rest = rest.slice(1)
      else if (!rest.startsWith("}")) return `label ${label}: "," or "}" expected after its value`
    }
  }
  if (!/^[ \t]/.test(rest)) return "whitespace and a value expected after the name and labels"
  const tokens = rest.trim().split(/[ \t]+/)
  if (tokens.length < 1 || tokens.length > 2) return `a value and at most a timestamp expected, got ${tokens.length} tokens`
  const value = parseValue(tokens[0] ?? "")
  if (value === undefined) return `bad value ${JSON.stringify(tokens[0])}`
  if (tokens[1] !== undefined && !timestamp.test(tokens[1])) return `bad timestamp ${JSON.stringify(tokens[1])}`
  return { name, labels, value, line: lineNumber }
}

/** The docstring of a HELP line, unescaped; an error message for a bad escape. */
const unescapeHelp = (text: string): string | { readonly error: string } => {
  let out = ""
  for (let i = 0; i < text.length; i++) {
    const char = text[i] ?? ""
    if (char !== "\\") {
      out += char
      continue
    }
    const next = text[i + 1]
    if (next === "\\") out += "\\"
    else if (next === "n") out += "\n"
    else return { error: `bad escape \\${next ?? ""} in a HELP docstring` }
    i++
  }
  return out
}

/** Checks a histogram's or a summary's samples; the breaches found. */
const checkShape = (family: Building): Array<string> => {
  const errors: Array<string> = []
  const name = family.name
  if (family.type === "counter") {
    for (const sample of family.samples) {
      if (!(sample.value >= 0)) errors.push(`line ${sample.line}: counter ${sample.name} is ${sample.value}`)
    }
  }
  if (family.type !== "histogram" && family.type !== "summary") return errors
  // The series of one histogram: its samples grouped by their labels less `le` / `quantile`.
  const bound = family.type === "histogram" ? "le" : "quantile"
  const series = new Map<string, { buckets: Array<Sample>; sum?: Sample; count?: Sample }>()
  for (const sample of family.samples) {
    const { [bound]: _omitted, ...rest } = sample.labels
    const key = seriesKey("", rest)
    const entry = series.get(key) ?? { buckets: [] }
    series.set(key, entry)
    if (sample.name === `${name}_sum`) entry.sum = sample
    else if (sample.name === `${name}_count`) entry.count = sample
    else if (sample.name === (family.type === "histogram" ? `${name}_bucket` : name)) {
      if (sample.labels[bound] === undefined) errors.push(`line ${sample.line}: ${sample.name} without an ${bound} label`)
      else entry.buckets.push(sample)
    } else errors.push(`line ${sample.line}: ${sample.name} does not belong to ${family.type} ${name}`)
  }
  for (const [key, entry] of series) {
    const where = `${name}${key}`
    if (entry.count === undefined) errors.push(`${where}: no ${name}_count`)
    if (entry.sum === undefined) errors.push(`${where}: no ${name}_sum`)
    if (entry.count !== undefined && !(entry.count.value >= 0)) errors.push(`${where}: _count is ${entry.count.value}`)
    if (family.type === "summary") continue
    let lastLe = -Infinity
    let lastCount = 0
    for (const bucket of entry.buckets) {
      const le = parseValue(bucket.labels["le"] ?? "")
      if (le === undefined || Number.isNaN(le)) {
        errors.push(`line ${bucket.line}: le=${JSON.stringify(bucket.labels["le"])} is not a number`)
        continue
      }
      if (!(le > lastLe)) errors.push(`line ${bucket.line}: buckets not in increasing order of le (${le} after ${lastLe})`)
      if (!(bucket.value >= lastCount)) errors.push(`line ${bucket.line}: bucket counts not cumulative (${bucket.value} after ${lastCount})`)
      lastLe = le
      lastCount = bucket.value
    }
    const last = entry.buckets.at(-1)
    if (last === undefined || parseValue(last.labels["le"] ?? "") !== Infinity) errors.push(`${where}: no le="+Inf" bucket last`)
    else if (entry.count !== undefined && last.value !== entry.count.value) {
      errors.push(`${where}: the +Inf bucket (${last.value}) is not _count (${entry.count.value})`)
    }
  }
  return errors
}

/** Reads a whole exposition; every breach of the grammar found, each with its line. */
export const parseExposition = (text: string): Parsed => {
  const errors: Array<string> = []
  if (text.length > 0 && !text.endsWith("\n")) errors.push("the last line does not end with a line feed")
  const lines = text.split("\n")
  if (lines.at(-1) === "") lines.pop()
  const families = new Map<string, Building>()
  const seen = new Set<string>()
  const closed = new Set<string>()
  let current: string | undefined
  const enter = (name: string, lineNumber: number): Building => {
    if (current !== name) {
      if (closed.has(name)) errors.push(`line ${lineNumber}: ${name}'s lines are not one group`)
      if (current !== undefined) closed.add(current)
      current = name
    }
    let family = families.get(name)
    if (family === undefined) {
      family = { name, type: undefined, help: undefined, samples: [], sampled: false }
      families.set(name, family)
    }
    return family
  }
  lines.forEach((raw, index) => {
    const lineNumber = index + 1
    const line = raw.trim()
    if (line === "") return
    if (line.startsWith("#")) {
      const tokens = line.slice(1).trim().split(/[ \t]+/)
      const keyword = tokens[0]
      if (keyword !== "HELP" && keyword !== "TYPE") return // a comment
      const name = tokens[1]
      if (name === undefined || metricName.exec(name)?.[0] !== name) {
        errors.push(`line ${lineNumber}: # ${keyword} without a valid metric name`)
        return
      }
      const family = enter(name, lineNumber)
      if (keyword === "TYPE") {
        const type = tokens[2]
        if (tokens.length !== 3 || type === undefined || !types.has(type)) {
          errors.push(`line ${lineNumber}: # TYPE ${name} needs one of ${[...types].join(", ")}`)
        } else if (family.type !== undefined) errors.push(`line ${lineNumber}: a second TYPE line for ${name}`)
        else if (family.sampled) errors.push(`line ${lineNumber}: TYPE for ${name} after its first sample`)
        else family.type = type as MetricType
      } else {
        if (family.help !== undefined) errors.push(`line ${lineNumber}: a second HELP line for ${name}`)
        // The docstring is the rest of the line after the name (whitespace-separated).
        const docstring = line.replace(/^#[ \t]*HELP[ \t]+\S+[ \t]?/, "")
        const help = unescapeHelp(docstring)
        if (typeof help === "string") family.help = help
        else errors.push(`line ${lineNumber}: ${help.error}`)
      }
      return
    }
    const sample = readSample(line, lineNumber)
    if (typeof sample === "string") {
      errors.push(`line ${lineNumber}: ${sample}: ${JSON.stringify(line.slice(0, 120))}`)
      return
    }
    const family = enter(familyOf(sample.name, families), lineNumber)
    family.sampled = true
    family.samples.push(sample)
    const key = seriesKey(sample.name, sample.labels)
    if (seen.has(key)) errors.push(`line ${lineNumber}: ${key} given twice`)
    seen.add(key)
  })
  for (const family of families.values()) errors.push(...checkShape(family))
  if (errors.length > 0) return { ok: false, errors }
  const done = new Map<string, Family>()
  for (const family of families.values()) {
    done.set(family.name, { name: family.name, type: family.type ?? "untyped", help: family.help, samples: family.samples })
  }
  return { ok: true, families: done, lines: lines.length }
}
