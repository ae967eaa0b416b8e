//! NameValue strings: `Name TYPE CLASS SENDTO value` lines (objects.md section 6).

/// One NameValue line, borrowed from the text it was parsed from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NameValue<'a> {
    /// The name (`FirstName`, `AttachItemID`, ...).
    pub name: &'a str,
    /// `STRING`, `F32`, `S32`, `VEC3`, `U32`, `ASSET` or `U64`.
    pub type_: &'a str,
    /// `R`, `RW` or `CB`.
    pub class: &'a str,
    /// `S`, `DS`, `SV` or `DSV`.
    pub send_to: &'a str,
    /// The rest of the line (may contain spaces, may be empty).
    pub value: &'a str,
}

impl<'a> NameValue<'a> {
    /// Parses one line: the first four separators (space, tab or CR) split it, the value keeps
    /// the rest. Missing parts are empty.
    pub fn parse(line: &'a str) -> Self {
        let mut rest = line.trim_end_matches(['\r', '\0']);
        let mut part = || match rest.find([' ', '\t', '\r']) {
            Some(i) => {
                let p = &rest[..i];
                rest = &rest[i + 1..];
                p
            }
            None => std::mem::take(&mut rest),
        };
        let name = part();
        let type_ = part();
        let class = part();
        let send_to = part();
        NameValue {
            name,
            type_,
            class,
            send_to,
            value: rest,
        }
    }

    /// A `STRING RW SV` value, as OpenSimulator sends avatar names and attachment item ids.
    pub fn string(name: &'a str, value: &'a str) -> Self {
        NameValue {
            name,
            type_: "STRING",
            class: "RW",
            send_to: "SV",
            value,
        }
    }
}

impl std::fmt::Display for NameValue<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} {} {} {} {}",
            self.name, self.type_, self.class, self.send_to, self.value
        )
    }
}

/// The lines of a NameValue text (a trailing NUL and empty lines are skipped).
pub fn name_values(text: &str) -> impl Iterator<Item = NameValue<'_>> {
    text.trim_end_matches('\0')
        .split('\n')
        .filter(|l| !l.trim().is_empty())
        .map(NameValue::parse)
}

/// The value of the first line named `name`.
pub fn name_value<'a>(text: &'a str, name: &str) -> Option<&'a str> {
    name_values(text)
        .find(|nv| nv.name == name)
        .map(|nv| nv.value)
}

/// The text for a list of NameValues (lines joined by `\n`, no NUL).
pub fn format_name_values<'a>(values: impl IntoIterator<Item = NameValue<'a>>) -> String {
    let mut s = String::new();
    for (i, nv) in values.into_iter().enumerate() {
        if i > 0 {
            s.push('\n');
        }
        s.push_str(&nv.to_string());
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn opensim_avatar_names_parse() {
        let text = "FirstName STRING RW SV Test\nLastName STRING RW SV User\nTitle STRING RW SV \0";
        let v: Vec<_> = name_values(text).collect();
        assert_eq!(v.len(), 3);
        assert_eq!(v[0], NameValue::string("FirstName", "Test"));
        assert_eq!(v[2].value, "");
        assert_eq!(name_value(text, "LastName"), Some("User"));
        let titled = "Title STRING RW SV Group Title Here";
        assert_eq!(name_value(titled, "Title"), Some("Group Title Here"));
        assert_eq!(format_name_values(v.clone()), text.trim_end_matches('\0'));
    }
}
