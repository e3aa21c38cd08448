//! `code_map!`: a channel's code table as an enum with `ALL`, `code()`, `parse()` and `target()`.
//! The table is the one place a code is listed; the generated `match` has no catch-all arm, so a
//! code without a target does not compile, and `parse` answers `None` for a code not listed
//! (the adapter turns that into `unknown_status`, never a guess).

macro_rules! code_map {
    ($(#[$m:meta])* $vis:vis enum $name:ident -> $target:ty {
        $( $(#[$vm:meta])* $variant:ident = $code:literal => $to:expr, )*
    }) => {
        $(#[$m])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        $vis enum $name { $( $(#[$vm])* $variant, )* }

        impl $name {
            pub const ALL: &'static [$name] = &[$($name::$variant),*];
            pub fn code(self) -> &'static str {
                match self { $($name::$variant => $code,)* }
            }
            pub fn parse(s: &str) -> Option<$name> {
                let s = s.trim();
                $name::ALL.iter().copied().find(|v| v.code() == s)
            }
            pub fn target(self) -> $target {
                #[allow(unused_imports)]
                use $crate::{CanonicalStatus::*, RefundState::*};
                match self { $($name::$variant => $to,)* }
            }
        }
    };
}
