import { defineConfig } from "vitest/config"
import { projects } from "./vitest.workspace.ts"

/**
 * Inside the repository every `@herd/*` import resolves to its package's
 * `src/` through the `@herd/source` export condition: tests need no build.
 * Each package's project extends this config, so the condition holds there too.
 */
export default defineConfig({
  resolve: { conditions: ["@herd/source"] },
  ssr: { resolve: { conditions: ["@herd/source"] } },
  test: { projects: projects.map(({ name, root }) => ({ extends: true, test: { name, root } })) }
})
