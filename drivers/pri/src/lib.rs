//! A safe wrapper over libpri (`outcall-pri-sys`): one span is one D-channel and N B-channels
//! (23 on a T1 PRI, 30 on an E1).
//!
//! A span owns its `struct pri`, created with `pri_new_cb` so that D-channel frames pass through
//! our callbacks (to a DAHDI HDLC channel or a softspan socket). libpri is not thread-safe per
//! instance: each span has exactly one owner, and every libpri event becomes a port event
//! (`outcall-port`). `unsafe` is confined to this crate and `outcall-dahdi`, each block with its
//! `// SAFETY:` argument.
#![allow(unsafe_code)]
