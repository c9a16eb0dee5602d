/** The defaults of PlacesConfig (PROTOCOL.md section 8), in one place for the layers and the config. */
export const defaultTimeoutMs = 5000
export const defaultGoogleBaseUrl = "https://places.googleapis.com"
export const defaultGoogleLegacyBaseUrl = "https://maps.googleapis.com"
