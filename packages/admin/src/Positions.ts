/**
 * Where the live map draws each server. A config says where a server
 * listens, not where it stands, so the map places servers by a rule that
 * needs nothing from the config:
 *
 * - the five servers of the default herd have fixed positions, chosen to
 *   spread them over the map, at a town of the same name where there is
 *   one: Alford, Lincolnshire; Parker, Colorado; Welsh, Louisiana;
 *   Hamilton, New Zealand; and Bolden, for want of a town, at Tokyo;
 * - any other server stands where its name's FNV-1a hash puts it: longitude
 *   from the hash's low 16 bits over [-170, 170], latitude from its high 16
 *   bits over [-55, 65] (where the land is). The same name is always drawn
 *   at the same place, on every server's map.
 */
export interface Position {
  readonly latitude: number
  readonly longitude: number
}

const fixed: Readonly<Record<string, Position>> = {
  Alford: { latitude: 53.26, longitude: 0.18 },
  Bolden: { latitude: 35.68, longitude: 139.69 },
  Hamilton: { latitude: -37.79, longitude: 175.28 },
  Parker: { latitude: 39.52, longitude: -104.76 },
  Welsh: { latitude: 30.24, longitude: -92.82 }
}

/** FNV-1a 32 of the name's UTF-16 code units. */
const hashOf = (name: string): number => {
  let hash = 0x811c9dc5
  for (let i = 0; i < name.length; i++) {
    hash ^= name.charCodeAt(i)
    hash = Math.imul(hash, 0x01000193)
  }
  return hash >>> 0
}

export const positionOf = (name: string): Position => {
  const known = fixed[name]
  if (known !== undefined) return known
  const hash = hashOf(name)
  return {
    latitude: -55 + ((hash >>> 16) / 0xffff) * 120,
    longitude: -170 + ((hash & 0xffff) / 0xffff) * 340
  }
}
