export { loadConfigFile } from "./ConfigFile.ts"
export * as EventLog from "./EventLog.ts"
export {
  decodeConfig,
  HerdConfig,
  HerdConfigError,
  HerdConfigSchema,
  LimitsConfig,
  LogConfig,
  neighboursOf,
  ReconnectConfig,
  ServerAddress,
  StoreConfig
} from "./HerdConfig.ts"
export type { HerdConfigInput, HerdConfigValue } from "./HerdConfig.ts"
export * as HerdServer from "./HerdServer.ts"
export * as Metrics from "./Metrics.ts"
export * as Exposure from "./Exposure.ts"
export * as Tls from "./internal/Tls.ts"
