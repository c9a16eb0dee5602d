/**
 * Which config file the `herd` command reads: `--config PATH`, else
 * `herd.config.ts` in the working directory, else the default herd that
 * ships at the top of this repository.
 */
import { FileSystem } from "@effect/platform"
import { HerdConfig, loadConfigFile } from "@herd/server"
import type { HerdConfigError, HerdConfigValue } from "@herd/server"
import { Effect, Layer, Option } from "effect"
import * as NodePath from "node:path"
import { fileURLToPath } from "node:url"

const shippedConfig = fileURLToPath(new URL("../../../herd.config.ts", import.meta.url))

export const resolveConfig = (
  configPath: Option.Option<string>
): Effect.Effect<HerdConfigValue, HerdConfigError, FileSystem.FileSystem> =>
  Effect.gen(function*() {
    if (Option.isSome(configPath)) return yield* loadConfigFile(configPath.value)
    const fs = yield* FileSystem.FileSystem
    const local = NodePath.resolve("herd.config.ts")
    const useLocal = yield* fs.exists(local).pipe(Effect.orElseSucceed(() => false))
    return yield* loadConfigFile(useLocal ? local : shippedConfig)
  })

export const configLayer = (config: HerdConfigValue) => Layer.succeed(HerdConfig, config)
