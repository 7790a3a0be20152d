export { PmuError, PmuErrorCode, isPmuError } from './unit/errors';
export { Region, RegionContext, Durability, WriteOptions, Rights } from './unit/region';
export { LocalRegion } from './unit/local-region';
export { PersistentMemoryUnit, OpenOptions, RegionInfo, Grant, UnitInfo, inspectFile } from './unit/unit';
export { crc32c } from './unit/native';
