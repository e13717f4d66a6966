//! Diacritics-insensitive search of units: "ngo may" finds "Công an phường Ngô Mây", and
//! "tran hung dao" finds "Trần Hưng Đạo".

/// Folds Vietnamese (and other Latin) text for searching: lower case, tone marks and
/// vowel marks removed, `đ`/`Đ` as `d`, runs of whitespace as one space.
pub fn fold(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars().flat_map(char::to_lowercase) {
        if ('\u{0300}'..='\u{036f}').contains(&c) {
            continue; // a combining mark of decomposed input
        }
        let base = base_letter(c);
        if base.is_whitespace() {
            if !out.is_empty() && !out.ends_with(' ') {
                out.push(' ');
            }
        } else {
            out.push(base);
        }
    }
    out.truncate(out.trim_end().len());
    out
}

/// Whether `haystack` contains `query`, both folded; an empty query matches everything.
pub fn matches(haystack: &str, query: &str) -> bool {
    fold(haystack).contains(&fold(query))
}

/// The letter without its marks; covers the Vietnamese alphabet, precomposed.
fn base_letter(c: char) -> char {
    const GROUPS: [(char, &str); 6] = [
        ('a', "àáảãạăằắẳẵặâầấẩẫậäå"),
        ('e', "èéẻẽẹêềếểễệë"),
        ('i', "ìíỉĩịïî"),
        ('o', "òóỏõọôồốổỗộơờớởỡợö"),
        ('u', "ùúủũụưừứửữựüû"),
        ('y', "ỳýỷỹỵÿ"),
    ];
    if c == 'đ' {
        return 'd';
    }
    GROUPS
        .iter()
        .find(|(_, marked)| marked.contains(c))
        .map_or(c, |(base, _)| *base)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn folds_vietnamese_marks_and_d() {
        assert_eq!(fold("Công an phường Ngô Mây"), "cong an phuong ngo may");
        assert_eq!(fold("TRẦN HƯNG ĐẠO"), "tran hung dao");
        assert_eq!(fold("  Thanh   Hóa "), "thanh hoa");
        assert!(matches("Công an phường Trần Hưng Đạo", "tran hung dao"));
        assert!(matches("Công an phường Trần Hưng Đạo", "Đạo"));
        assert!(!matches("Công an phường Ngô Mây", "an hung"));
        assert!(matches("anything", ""));
    }

    #[test]
    fn decomposed_input_folds_like_precomposed() {
        // "Mây" typed with a combining circumflex.
        assert_eq!(fold("Ma\u{0302}y"), fold("Mây"));
    }
}
