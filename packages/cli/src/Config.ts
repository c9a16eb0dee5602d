/**
 * Which config file the `herd` command reads: `--config PATH`, else
 * `herd.config.ts` in the working directory, else the default herd built
 * into the command.
 */
import { FileSystem } from "@effect/platform"
import { ConfigFile, Exposure, HerdConfig } from "@herd/server"
import { Effect, Either, Option } from "effect"
import * as NodePath from "node:path"
import { defaultHerd } from "./DefaultHerd.ts"
import { UsageError } from "./Report.ts"

/** A config and the file it came from, as messages name it. */
export interface LoadedConfig {
  readonly config: HerdConfig.HerdConfigValue
  readonly source: string
}

export const resolveConfig = (
  configPath: Option.Option<string>
): Effect.Effect<LoadedConfig, HerdConfig.HerdConfigError, FileSystem.FileSystem> =>
  Effect.gen(function*() {
    const fs = yield* FileSystem.FileSystem
    const source = Option.isSome(configPath)
      ? configPath.value
      : (yield* fs.exists(NodePath.resolve("herd.config.ts")).pipe(Effect.orElseSucceed(() => false)))
      ? "herd.config.ts"
      : undefined
    if (source === undefined) {
      const builtIn = "the default herd"
      return { config: yield* HerdConfig.decodeConfig(defaultHerd, builtIn), source: builtIn }
    }
    const config = yield* ConfigFile.loadConfigFile(source)
    return { config, source }
  })

/** Fails with a usage error naming the servers the config has, unless it has every one of `names`. */
export const checkServerNames = (
  { config, source }: LoadedConfig,
  names: ReadonlyArray<string>
): Effect.Effect<void, UsageError> => {
  const unknown = names.find((name) => !Object.hasOwn(config.servers, name))
  return unknown === undefined ? Effect.void : Effect.fail(
    new UsageError({
      message: `no server ${JSON.stringify(unknown)} in ${source} (its servers: ${Object.keys(config.servers).join(", ")})`
    })
  )
}

/**
 * The safe default: `serve` and `up` refuse (exit 2) to listen beyond
 * loopback without `tls`, unless `--insecure` or the config's `insecure`.
 */
export const checkExposure = (
  { config }: LoadedConfig,
  names: ReadonlyArray<string>,
  insecure: boolean
): Effect.Effect<void, UsageError> =>
  Either.match(Exposure.check(config, names, insecure), {
    onLeft: (error) => Effect.fail(new UsageError({ message: error.message, cause: error })),
    onRight: () => Effect.void
  })
