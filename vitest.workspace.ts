// One test project per package: every folder under packages/, named after its
// package. This module is the single place the list is made.
import { readdirSync, readFileSync } from "node:fs"
import { join } from "node:path"

const packagesDir = join(import.meta.dirname, "packages")

export const projects = readdirSync(packagesDir, { withFileTypes: true })
  .filter((entry) => entry.isDirectory())
  .map((entry) => {
    const root = join(packagesDir, entry.name)
    const { name } = JSON.parse(readFileSync(join(root, "package.json"), "utf8")) as { name: string }
    return { name, root }
  })
