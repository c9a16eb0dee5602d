// The library ships no types: the one function the tests call.
declare module "parse-prometheus-text-format" {
  const parsePrometheusTextFormat: (text: string) => ReadonlyArray<unknown>
  export default parsePrometheusTextFormat
}
