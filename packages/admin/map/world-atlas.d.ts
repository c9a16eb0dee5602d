// world-atlas ships its TopoJSON without types: the shape of the one file the map draws.
declare module "world-atlas/countries-110m.json" {
  import type { GeometryCollection, Topology } from "topojson-specification"
  const topology: Topology<{ countries: GeometryCollection; land: GeometryCollection }>
  export default topology
}
