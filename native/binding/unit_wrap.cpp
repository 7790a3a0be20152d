#include "unit_wrap.h"

#include <string>
#include <utility>
#include <vector>

#include "args.h"
#include "checksum_worker.h"
#include "create_region_worker.h"
#include "flush_worker.h"

namespace pmu_binding {

namespace {

constexpr uint32_t kWriteSync = 1;
constexpr uint32_t kWriteJoinGroup = 2;
constexpr uint32_t kWriteFence = 4;

Napi::Value Invalid(Napi::Env env, const char* what) {
  return ThrowStatus(env, pmu::Status::kInvalid, what);
}

Napi::Number Status(Napi::Env env, pmu::Status s) { return Napi::Number::New(env, static_cast<int>(s)); }

std::string Hex(const uint8_t* p, size_t n) {
  static const char digits[] = "0123456789abcdef";
  std::string out;
  for (size_t i = 0; i < n; i++) {
    out += digits[p[i] >> 4];
    out += digits[p[i] & 15];
  }
  return out;
}

}  // namespace

Napi::Object EntryToObject(Napi::Env env, const pmu::RegionEntry& e) {
  Napi::Object o = Napi::Object::New(env);
  o.Set("handle", Napi::Number::New(env, e.handle));
  o.Set("name", Napi::String::New(env, e.name));
  o.Set("base", Napi::Number::New(env, static_cast<double>(e.vbase)));
  o.Set("length", Napi::Number::New(env, static_cast<double>(e.length)));
  o.Set("physOffset", Napi::Number::New(env, static_cast<double>(e.phys_offset)));
  o.Set("extent", Napi::Number::New(env, static_cast<double>(e.extent)));
  o.Set("createdGeneration", Napi::Number::New(env, static_cast<double>(e.created_generation)));
  o.Set("owner", Napi::String::New(env, e.owner));
  o.Set("key", Napi::Buffer<uint8_t>::Copy(env, e.key, pmu::kKeySize));
  Napi::Array grants = Napi::Array::New(env, e.grants.size());
  for (size_t i = 0; i < e.grants.size(); i++) {
    Napi::Object g = Napi::Object::New(env);
    g.Set("user", Napi::String::New(env, e.grants[i].user));
    g.Set("rights", Napi::Number::New(env, e.grants[i].rights));
    grants.Set(static_cast<uint32_t>(i), g);
  }
  o.Set("grants", grants);
  return o;
}

Napi::Object InfoToObject(Napi::Env env, const pmu::UnitInfo& info) {
  Napi::Object o = Napi::Object::New(env);
  o.Set("path", Napi::String::New(env, info.path));
  o.Set("size", Napi::Number::New(env, static_cast<double>(info.file_size)));
  o.Set("dataOffset", Napi::Number::New(env, static_cast<double>(info.data_offset)));
  o.Set("generation", Napi::Number::New(env, static_cast<double>(info.generation)));
  o.Set("maxRegions", Napi::Number::New(env, info.max_regions));
  o.Set("regionCount", Napi::Number::New(env, info.region_count));
  o.Set("freeBytes", Napi::Number::New(env, static_cast<double>(info.free_bytes)));
  o.Set("largestFreeExtent", Napi::Number::New(env, static_cast<double>(info.largest_free_extent)));
  o.Set("uuid", Napi::String::New(env, Hex(info.uuid, 16)));
  return o;
}

Napi::Function NativeUnit::Define(Napi::Env env) {
  return DefineClass(env, "NativeUnit",
                     {
                         InstanceMethod<&NativeUnit::Open>("open"),
                         InstanceMethod<&NativeUnit::Close>("close"),
                         InstanceMethod<&NativeUnit::Info>("info"),
                         InstanceMethod<&NativeUnit::Regions>("regions"),
                         InstanceMethod<&NativeUnit::CreateRegion>("createRegion"),
                         InstanceMethod<&NativeUnit::CreateRegionAsync>("createRegionAsync"),
                         InstanceMethod<&NativeUnit::DeleteRegion>("deleteRegion"),
                         InstanceMethod<&NativeUnit::SetGrants>("setGrants"),
                         InstanceMethod<&NativeUnit::Write>("write"),
                         InstanceMethod<&NativeUnit::Read>("read"),
                         InstanceMethod<&NativeUnit::Flush>("flush"),
                         InstanceMethod<&NativeUnit::MarkForFlush>("markForFlush"),
                         InstanceMethod<&NativeUnit::FlushGroup>("flushGroup"),
                         InstanceMethod<&NativeUnit::FlushGroupSync>("flushGroupSync"),
                         InstanceMethod<&NativeUnit::CompareAndSwap>("compareAndSwap"),
                         InstanceMethod<&NativeUnit::Checksum>("checksum"),
                         InstanceMethod<&NativeUnit::Failed>("failed"),
                     });
}

NativeUnit::NativeUnit(const Napi::CallbackInfo& info) : Napi::ObjectWrap<NativeUnit>(info) {}

NativeUnit::~NativeUnit() = default;  // pmu::Unit's file unmaps and closes itself

// open(path)
Napi::Value NativeUnit::Open(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (!info[0].IsString()) return Invalid(env, "path must be a string");
  std::string detail;
  pmu::Status s = unit_.open(info[0].As<Napi::String>().Utf8Value(), &detail);
  if (s != pmu::Status::kOk) return ThrowStatus(env, s, detail);
  Napi::Object result = InfoToObject(env, unit_.info());
  result.Set("recoveryNote", Napi::String::New(env, unit_.recovery_note()));
  return result;
}

Napi::Value NativeUnit::Close(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (inflight > 0) return ThrowStatus(env, pmu::Status::kBusy, "wait for the flush in flight before closing");
  std::string path = unit_.info().path;
  pmu::Status s = unit_.close();
  if (s == pmu::Status::kIo)
    return ThrowStatus(env, s,
                       "closed " + path +
                           ", but a flush failed (earlier, or the final one): what was written since the last "
                           "successful flush may not be on disk, and no write after the failure was acknowledged; "
                           "check the disk (dmesg) and the file (`pmu inspect --verify`)");
  if (s != pmu::Status::kOk && s != pmu::Status::kClosed) return ThrowStatus(env, s, "close " + path);
  return env.Undefined();
}

Napi::Value NativeUnit::Info(const Napi::CallbackInfo& info) {
  if (!unit_.is_open()) return ThrowStatus(info.Env(), pmu::Status::kClosed, "");
  return InfoToObject(info.Env(), unit_.info());
}

Napi::Value NativeUnit::Regions(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (!unit_.is_open()) return ThrowStatus(env, pmu::Status::kClosed, "");
  const auto& regions = unit_.regions();
  Napi::Array out = Napi::Array::New(env, regions.size());
  for (size_t i = 0; i < regions.size(); i++) out.Set(static_cast<uint32_t>(i), EntryToObject(env, regions[i]));
  return out;
}

// createRegion(name, length, owner)
Napi::Value NativeUnit::CreateRegion(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  uint64_t length;
  if (!info[0].IsString() || !ToU64(info[1], &length) || !info[2].IsString())
    return Invalid(env, "createRegion(name: string, length: integer, owner: string)");
  const pmu::RegionEntry* created = nullptr;
  std::string detail;
  pmu::Status s = unit_.create_region(info[0].As<Napi::String>().Utf8Value(), length,
                                      info[2].As<Napi::String>().Utf8Value(), &created, &detail);
  if (s != pmu::Status::kOk) return ThrowStatus(env, s, detail);
  return EntryToObject(env, *created);
}

// createRegionAsync(name, length, owner, callback(status, entry | undefined, detail)): the checks
// and the reservation now (a refusal throws, as createRegion's does), the zero-fill on the
// pool, the table commit back on this thread (CreateRegionWorker).
Napi::Value NativeUnit::CreateRegionAsync(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  uint64_t length;
  if (!info[0].IsString() || !ToU64(info[1], &length) || !info[2].IsString() || !info[3].IsFunction())
    return Invalid(env, "createRegionAsync(name: string, length: integer, owner: string, callback)");
  pmu::Unit::CreateReservation reservation;
  std::string detail;
  pmu::Status s = unit_.begin_create_region(info[0].As<Napi::String>().Utf8Value(), length,
                                            info[2].As<Napi::String>().Utf8Value(), &reservation, &detail);
  if (s != pmu::Status::kOk) return ThrowStatus(env, s, detail);
  auto* worker = new CreateRegionWorker(info[3].As<Napi::Function>(), this, Value(), std::move(reservation));
  worker->Queue();
  return env.Undefined();
}

// deleteRegion(handle)
Napi::Value NativeUnit::DeleteRegion(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  uint32_t handle;
  if (!ToU32(info[0], &handle)) return Invalid(env, "deleteRegion(handle: integer)");
  pmu::Status s = unit_.delete_region(handle);
  if (s != pmu::Status::kOk) return ThrowStatus(env, s, "");
  return env.Undefined();
}

// setGrants(handle, [{ user, rights }])
Napi::Value NativeUnit::SetGrants(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  uint32_t handle;
  if (!ToU32(info[0], &handle) || !info[1].IsArray()) return Invalid(env, "setGrants(handle, grants[])");
  Napi::Array array = info[1].As<Napi::Array>();
  std::vector<pmu::Grant> grants;
  for (uint32_t i = 0; i < array.Length(); i++) {
    Napi::Value item = array.Get(i);
    if (!item.IsObject()) return Invalid(env, "each grant is { user, rights }");
    Napi::Object g = item.As<Napi::Object>();
    uint32_t rights;
    if (!g.Get("user").IsString() || !ToU32(g.Get("rights"), &rights) || rights > 255)
      return Invalid(env, "each grant is { user: string, rights: 1 | 3 }");
    grants.push_back({g.Get("user").As<Napi::String>().Utf8Value(), static_cast<uint8_t>(rights)});
  }
  std::string detail;
  pmu::Status s = unit_.set_grants(handle, grants, &detail);
  if (s != pmu::Status::kOk) return ThrowStatus(env, s, detail);
  return env.Undefined();
}

// write(handle, vaddr, bytes, flags, fenceVaddr, fenceEpoch) -> status
Napi::Value NativeUnit::Write(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  uint32_t handle, flags;
  uint64_t vaddr;
  Bytes bytes;
  if (!ToU32(info[0], &handle) || !ToU64(info[1], &vaddr) || !ToBytes(info[2], &bytes) || !ToU32(info[3], &flags))
    return Status(env, pmu::Status::kInvalid);
  pmu::Unit::WriteOptions options;
  options.sync = (flags & kWriteSync) != 0;
  options.join_group = (flags & kWriteJoinGroup) != 0;
  options.fence = (flags & kWriteFence) != 0;
  if (options.fence && (!ToU64(info[4], &options.fence_vaddr) || !ToU64(info[5], &options.fence_epoch)))
    return Status(env, pmu::Status::kInvalid);
  return Status(env, unit_.write(handle, vaddr, bytes.data, bytes.length, options));
}

// read(handle, vaddr, target) -> status; fills all of target
Napi::Value NativeUnit::Read(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  uint32_t handle;
  uint64_t vaddr;
  Bytes target;
  if (!ToU32(info[0], &handle) || !ToU64(info[1], &vaddr) || !ToBytes(info[2], &target))
    return Status(env, pmu::Status::kInvalid);
  return Status(env, unit_.read(handle, vaddr, target.data, target.length));
}

// flush(handle, vaddr, length) -> status; msync on this thread
Napi::Value NativeUnit::Flush(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  uint32_t handle;
  uint64_t vaddr, length;
  if (!ToU32(info[0], &handle) || !ToU64(info[1], &vaddr) || !ToU64(info[2], &length))
    return Status(env, pmu::Status::kInvalid);
  return Status(env, unit_.flush(handle, vaddr, length));
}

// markForFlush(handle, vaddr, length) -> status; the range joins the next flushGroup
Napi::Value NativeUnit::MarkForFlush(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  uint32_t handle;
  uint64_t vaddr, length;
  if (!ToU32(info[0], &handle) || !ToU64(info[1], &vaddr) || !ToU64(info[2], &length))
    return Status(env, pmu::Status::kInvalid);
  return Status(env, unit_.mark_for_flush(handle, vaddr, length));
}

// flushGroup(callback(status)): msync, on the libuv pool, of every range that joined the group
Napi::Value NativeUnit::FlushGroup(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (!info[0].IsFunction()) return Invalid(env, "flushGroup(callback)");
  if (!unit_.is_open()) return ThrowStatus(env, pmu::Status::kClosed, "");
  auto* worker = new FlushWorker(info[0].As<Napi::Function>(), this, Value());
  worker->Queue();  // the worker deletes itself after OnOK
  return env.Undefined();
}

// flushGroupSync() -> status: the same msync on this thread, for a lone writer (no pool round trip).
// The caller (GroupCommit) never runs it while a flushGroup worker is in flight.
Napi::Value NativeUnit::FlushGroupSync(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (!unit_.is_open()) return ThrowStatus(env, pmu::Status::kClosed, "");
  const pmu::FlushSpan span = unit_.take_pending_span();
  return Status(env, span.empty() ? pmu::Status::kOk : unit_.flush_span(span));
}

// compareAndSwap(handle, vaddr, expected: bigint, desired: bigint, sync) -> previous: bigint
Napi::Value NativeUnit::CompareAndSwap(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  uint32_t handle;
  uint64_t vaddr, expected, desired;
  if (!ToU32(info[0], &handle) || !ToU64(info[1], &vaddr) || !info[2].IsBigInt() || !ToU64(info[2], &expected) ||
      !info[3].IsBigInt() || !ToU64(info[3], &desired))
    return Invalid(env, "compareAndSwap(handle, vaddr, expected: bigint, desired: bigint, sync)");
  uint64_t previous = 0;
  pmu::Status s = unit_.compare_and_swap(handle, vaddr, expected, desired, &previous, info[4].ToBoolean());
  if (s != pmu::Status::kOk) return ThrowStatus(env, s, "");
  return Napi::BigInt::New(env, previous);
}

// checksum(handle, vaddr, length, callback(status, crc)) -> status. A refusal (EINVAL, EBOUNDS,
// ENOENT, ECLOSED) is returned now and the callback never runs; on OK the CRC32C is computed on
// the libuv pool (ChecksumWorker) and the callback gets (OK, crc).
Napi::Value NativeUnit::Checksum(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  uint32_t handle;
  uint64_t vaddr, length;
  if (!ToU32(info[0], &handle) || !ToU64(info[1], &vaddr) || !ToU64(info[2], &length) || !info[3].IsFunction())
    return Status(env, pmu::Status::kInvalid);
  pmu::ChecksumSpan span;
  pmu::Status s = unit_.prepare_checksum(handle, vaddr, length, &span);
  if (s != pmu::Status::kOk) return Status(env, s);
  auto* worker = new ChecksumWorker(info[3].As<Napi::Function>(), this, Value(), span);
  worker->Queue();  // the worker deletes itself after OnOK
  return Status(env, pmu::Status::kOk);
}

Napi::Value NativeUnit::Failed(const Napi::CallbackInfo& info) {
  return Napi::Boolean::New(info.Env(), unit_.failed());
}

}  // namespace pmu_binding
