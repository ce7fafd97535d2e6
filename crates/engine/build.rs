//! Compiles the small C helpers in `csrc/` that give us C `long double` arithmetic and the C
//! library's `strtod`/`strtold` acceptance rules, which Redis-compatible replies depend on.

fn main() {
    println!("cargo:rerun-if-changed=csrc/ldouble.c");
    cc::Build::new().file("csrc/ldouble.c").warnings(true).extra_warnings(true).compile("tandem_ldouble");
}
