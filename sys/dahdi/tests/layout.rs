//! Proves the DAHDI ioctl request numbers and the layout of every struct they carry against the
//! C compiler: a small C program is built with gcc (`cc`) against the very header bindgen read,
//! and prints what C computes; Rust must agree on every value.

use outcall_dahdi_sys::ioctl::ALL;
use outcall_dahdi_sys::{dahdi_bufferinfo, dahdi_params, dahdi_spaninfo, HEADER_PATH};
use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::Path;
use std::process::Command;

/// One struct's layout as Rust sees it, with the C expressions that compute the same values.
struct Layout {
    name: &'static str,
    size: usize,
    align: usize,
    fields: Vec<(&'static str, usize)>,
}

macro_rules! layout {
    ($s:ident { $($f:ident),* $(,)? }) => {
        Layout {
            name: stringify!($s),
            size: std::mem::size_of::<$s>(),
            align: std::mem::align_of::<$s>(),
            fields: vec![$((stringify!($f), std::mem::offset_of!($s, $f))),*],
        }
    };
}

fn layouts() -> Vec<Layout> {
    vec![
        layout!(dahdi_params {
            channo,
            spanno,
            chanpos,
            sigtype,
            sigcap,
            rxisoffhook,
            rxbits,
            txbits,
            txhooksig,
            rxhooksig,
            curlaw,
            idlebits,
            name,
            prewinktime,
            preflashtime,
            winktime,
            flashtime,
            starttime,
            rxwinktime,
            rxflashtime,
            debouncetime,
            pulsebreaktime,
            pulsemaketime,
            pulseaftertime,
            chan_alarms,
        }),
        layout!(dahdi_spaninfo {
            spanno,
            name,
            desc,
            alarms,
            txlevel,
            rxlevel,
            bpvcount,
            crc4count,
            ebitcount,
            fascount,
            fecount,
            cvcount,
            becount,
            prbs,
            errsec,
            irqmisses,
            syncsrc,
            numchans,
            totalchans,
            totalspans,
            lbo,
            lineconfig,
            lboname,
            location,
            manufacturer,
            devicetype,
            irq,
            linecompat,
            spantype,
        }),
        layout!(dahdi_bufferinfo {
            txbufpolicy,
            rxbufpolicy,
            numbufs,
            bufsize,
            readbufs,
            writebufs,
        }),
    ]
}

/// Builds and runs the C probe; returns its `key value` lines as a map.
fn c_values(layouts: &[Layout]) -> BTreeMap<String, u64> {
    let include_dir = Path::new(HEADER_PATH)
        .parent()
        .and_then(Path::parent)
        .expect("HEADER_PATH is <include>/dahdi/user.h");
    let mut c = String::from(
        "#include <stdio.h>\n#include <stddef.h>\n#include <dahdi/user.h>\nint main(void) {\n",
    );
    for (name, _) in ALL {
        writeln!(
            c,
            "  printf(\"ioctl {name} %lu\\n\", (unsigned long)({name}));"
        )
        .unwrap();
    }
    for l in layouts {
        let s = l.name;
        writeln!(c, "  printf(\"size {s} %zu\\n\", sizeof(struct {s}));").unwrap();
        writeln!(c, "  printf(\"align {s} %zu\\n\", _Alignof(struct {s}));").unwrap();
        for (f, _) in &l.fields {
            writeln!(
                c,
                "  printf(\"offset {s}.{f} %zu\\n\", offsetof(struct {s}, {f}));"
            )
            .unwrap();
        }
    }
    c.push_str("  return 0;\n}\n");

    let dir = std::env::temp_dir().join(format!("outcall-dahdi-layout-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let src = dir.join("probe.c");
    let exe = dir.join("probe");
    std::fs::write(&src, &c).unwrap();
    let out = Command::new(std::env::var("CC").unwrap_or_else(|_| "cc".into()))
        .arg("-std=gnu11")
        .arg(format!("-I{}", include_dir.display()))
        .arg("-o")
        .arg(&exe)
        .arg(&src)
        .output()
        .expect("a C compiler (cc/gcc) is installed: scripts/setup.sh installs gcc");
    assert!(
        out.status.success(),
        "gcc failed on the probe:\n{}\n{c}",
        String::from_utf8_lossy(&out.stderr)
    );
    let run = Command::new(&exe).output().expect("the probe runs");
    assert!(run.status.success());
    std::fs::remove_dir_all(&dir).ok();
    String::from_utf8(run.stdout)
        .unwrap()
        .lines()
        .map(|line| {
            let (k, v) = line.rsplit_once(' ').expect("probe prints `key value`");
            (k.to_string(), v.parse().expect("probe prints numbers"))
        })
        .collect()
}

#[test]
fn ioctl_numbers_and_struct_layouts_match_gcc() {
    let layouts = layouts();
    let c = c_values(&layouts);
    let mut checked = 0;
    let mut mismatches = Vec::new();
    let mut check = |key: String, rust: u64| {
        let cv = *c
            .get(&key)
            .unwrap_or_else(|| panic!("the C probe printed no {key}"));
        if cv != rust {
            mismatches.push(format!("{key}: C {cv:#x}, Rust {rust:#x}"));
        }
        checked += 1;
    };
    for (name, req) in ALL {
        // ioctl_num_type is c_ulong on glibc but c_int on musl: the cast is not always a no-op.
        #[allow(clippy::unnecessary_cast)]
        check(format!("ioctl {name}"), *req as u64);
    }
    for l in &layouts {
        check(format!("size {}", l.name), l.size as u64);
        check(format!("align {}", l.name), l.align as u64);
        for (f, off) in &l.fields {
            check(format!("offset {}.{f}", l.name), *off as u64);
        }
    }
    assert!(
        mismatches.is_empty(),
        "C and Rust disagree:\n{}",
        mismatches.join("\n")
    );
    assert_eq!(
        checked,
        c.len(),
        "every value the probe printed was compared"
    );
    println!("{checked} ioctl numbers, sizes, alignments and offsets agree with gcc");
}

#[test]
fn the_issue_list_of_ioctls_is_covered() {
    for required in [
        "DAHDI_SPECIFY",
        "DAHDI_SET_BLOCKSIZE",
        "DAHDI_GET_PARAMS",
        "DAHDI_SET_PARAMS",
        "DAHDI_SETLAW",
        "DAHDI_SPANSTAT",
        "DAHDI_HOOK",
        "DAHDI_GET_BUFINFO",
        "DAHDI_SET_BUFINFO",
        "DAHDI_GETEVENT",
    ] {
        assert!(
            ALL.iter().any(|(n, _)| *n == required),
            "{required} has no Rust request number"
        );
    }
}

/// The field lists above must name every field bindgen generated, so a header change that adds a
/// field cannot slip past the offset comparison.
#[test]
fn every_generated_field_is_compared() {
    let generated =
        std::fs::read_to_string(concat!(env!("OUT_DIR"), "/dahdi.rs")).expect("bindgen output");
    for l in layouts() {
        let start = format!("pub struct {} {{", l.name);
        let body = generated
            .split_once(&start)
            .unwrap_or_else(|| panic!("bindgen generated no struct {}", l.name))
            .1;
        let body = &body[..body.find("\n}").expect("struct body ends")];
        let fields: Vec<&str> = body
            .lines()
            .filter_map(|line| line.trim().strip_prefix("pub "))
            .filter_map(|rest| rest.split_once(':').map(|(name, _)| name.trim()))
            .collect();
        let listed: Vec<&str> = l.fields.iter().map(|(f, _)| *f).collect();
        assert_eq!(
            fields, listed,
            "struct {}: field list differs from bindgen's",
            l.name
        );
    }
}
