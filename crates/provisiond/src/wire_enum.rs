//! `wire_enum!`: a domain enum whose values are one of AWS's enum strings. Stored documents and
//! the wire keep the string (`"UNDER_CHANGE"`), the domain matches on variants; the string is
//! written once, in the enum's definition.

/// Defines `enum Name { Variant = "WIRE", … }` with serde renames to the wire strings, `as_str`,
/// `parse`, `ALL` and `Display`.
macro_rules! wire_enum {
    (
        $(#[$meta:meta])*
        $vis:vis enum $name:ident {
            $( $(#[$variant_meta:meta])* $variant:ident = $wire:literal, )+
        }
    ) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
        $vis enum $name {
            $( $(#[$variant_meta])* #[serde(rename = $wire)] $variant, )+
        }

        impl $name {
            /// Every value, in definition order.
            #[allow(dead_code)]
            pub const ALL: &'static [$name] = &[$($name::$variant),+];

            /// The wire string.
            pub const fn as_str(self) -> &'static str {
                match self {
                    $( $name::$variant => $wire, )+
                }
            }

            /// The value a wire string names, if any.
            #[allow(dead_code)]
            pub fn parse(wire: &str) -> Option<$name> {
                match wire {
                    $( $wire => Some($name::$variant), )+
                    _ => None,
                }
            }
        }

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(self.as_str())
            }
        }

        impl From<$name> for String {
            fn from(value: $name) -> String {
                value.as_str().to_string()
            }
        }
    };
}

pub(crate) use wire_enum;

#[cfg(test)]
mod tests {
    wire_enum! {
        /// A test enum.
        enum Light {
            Red = "RED",
            /// Amber.
            Amber = "AMBER",
            Green = "GREEN_LIGHT",
        }
    }

    #[test]
    fn strings_round_trip_through_parse_serde_and_display() {
        for light in Light::ALL {
            assert_eq!(Light::parse(light.as_str()), Some(*light));
            let json = serde_json::to_string(light).unwrap();
            assert_eq!(json, format!("\"{}\"", light.as_str()));
            assert_eq!(serde_json::from_str::<Light>(&json).unwrap(), *light);
            assert_eq!(light.to_string(), light.as_str());
        }
        assert_eq!(Light::Green.as_str(), "GREEN_LIGHT");
        assert_eq!(Light::parse("Green"), None);
        assert_eq!(Light::parse(""), None);
        assert!(serde_json::from_str::<Light>("\"BLUE\"").is_err());
        assert_eq!(String::from(Light::Amber), "AMBER");
    }
}
