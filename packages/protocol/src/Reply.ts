/**
 * The replies other than an AT line: a WHATSAT answer and the refusal of an
 * invalid line (PROTOCOL.md sections 4 and 6).
 */

/**
 * A WHATSAT answer, as a latin1 string like every line of this package (one
 * char per byte: write it with `Buffer.from(reply, "latin1")`): the stored AT
 * line, LF, the Places body of `formatPlacesJson` in UTF-8, then two LFs.
 *
 * The AT line already holds the client's bytes, while the body is Unicode text
 * (`São Paulo`); the body is turned into its UTF-8 bytes so that both halves
 * go out in one encoding and neither is mangled.
 */
export const formatWhatsatReply = (atLine: string, body: unknown): string =>
  atLine + "\n" + printedPlacesBody(body) + "\n\n"

/** The Places body of a WHATSAT answer as its UTF-8 bytes in a latin1 string. */
export const printedPlacesBody = (body: unknown): string => utf8BytesAsLatin1(formatPlacesJson(body))

/**
 * `printedPlacesBody` that prints each body object once: a Places cache
 * hands the same body object to every WHATSAT that asks the same question
 * within its time to live. (Bodies are never changed once made; a WeakMap
 * lets them go with the cache entry.) A server makes one and keeps it.
 */
export const makeBodyPrinter = (): ((body: unknown) => string) => {
  const printed = new WeakMap<object, string>()
  return (body) => {
    if (typeof body !== "object" || body === null) return printedPlacesBody(body)
    let text = printed.get(body)
    if (text === undefined) {
      text = printedPlacesBody(body)
      printed.set(body, text)
    }
    return text
  }
}

/**
 * The Places body of a WHATSAT answer as Unicode text: three-space indentation.
 * `body` is plain JSON data (as parsed from a Places response or built from one).
 *
 * PROTOCOL.md asks for runs of LFs in the body to be collapsed and trailing
 * LFs removed, so that the final two LFs of the answer are the only empty line
 * a client reads. JSON.stringify already guarantees both: it escapes LFs inside
 * strings, puts exactly one LF between items and ends on `}`, `]` or a scalar.
 * So the body goes out as printed, without a second pass over it.
 */
export const formatPlacesJson = (body: unknown): string => JSON.stringify(body, null, 3) ?? "null"

/**
 * `? `, the line as received (without its CR LF), LF: the bytes echoed
 * exactly, as a latin1 string like every reply of this package.
 */
export const invalidReply = (line: string): string => "? " + line + "\n"

/** The UTF-8 bytes of `text`, one latin1 char each; ASCII text is its own encoding. */
const utf8BytesAsLatin1 = (text: string): string =>
  Buffer.byteLength(text, "utf8") === text.length ? text : Buffer.from(text, "utf8").toString("latin1")
