//! Colour contrast of static/app.css, computed from its custom properties: every pair
//! of text and background colour the stylesheet uses meets WCAG AA (4.5:1) in the light
//! theme, the dark theme and the system-dark block; focus rings and control borders
//! meet 3:1. (The browser tests also check the rendered pages' text colours.)

use std::collections::BTreeMap;

const CSS: &str = include_str!("../static/app.css");

type Palette = BTreeMap<String, (f64, f64, f64)>;

/// The `--name: #rrggbb;` declarations in the block that starts at `selector`.
fn palette(selector: &str) -> Palette {
    let start = CSS
        .find(selector)
        .unwrap_or_else(|| panic!("{selector} in app.css"));
    let body = &CSS[start..];
    let open = body.find('{').unwrap() + 1;
    let close = open + body[open..].find('}').unwrap();
    let mut colours = Palette::new();
    for decl in body[open..close].split(';') {
        let Some((name, value)) = decl.split_once(':') else {
            continue;
        };
        let (name, value) = (name.trim(), value.trim());
        if let (Some(name), Some(hex)) = (name.strip_prefix("--"), value.strip_prefix('#')) {
            assert_eq!(hex.len(), 6, "--{name}: #{hex} should be #rrggbb");
            let channel = |i: usize| u8::from_str_radix(&hex[i..i + 2], 16).unwrap();
            colours.insert(
                name.to_owned(),
                (
                    f64::from(channel(0)),
                    f64::from(channel(2)),
                    f64::from(channel(4)),
                ),
            );
        }
    }
    assert!(colours.len() > 10, "{selector}: too few colours found");
    colours
}

fn luminance((r, g, b): (f64, f64, f64)) -> f64 {
    let lin = |c: f64| {
        let c = c / 255.0;
        if c <= 0.040_45 {
            c / 12.92
        } else {
            ((c + 0.055) / 1.055).powf(2.4)
        }
    };
    0.2126 * lin(r) + 0.7152 * lin(g) + 0.0722 * lin(b)
}

fn ratio(a: (f64, f64, f64), b: (f64, f64, f64)) -> f64 {
    let (la, lb) = (luminance(a), luminance(b));
    (la.max(lb) + 0.05) / (la.min(lb) + 0.05)
}

/// (foreground, background, minimum): where app.css puts one colour on the other.
const PAIRS: &[(&str, &str, f64)] = &[
    // Body text, hints, links and headings on the page and on cards, and on hovered rows.
    ("text", "bg", 4.5),
    ("text", "surface", 4.5),
    ("text", "topbar", 4.5),
    ("text", "hover", 4.5),
    ("muted", "bg", 4.5),
    ("muted", "surface", 4.5),
    ("muted", "topbar", 4.5),
    ("muted", "hover", 4.5),
    ("link", "bg", 4.5),
    ("link", "surface", 4.5),
    ("link", "hover", 4.5),
    // Field errors on cards; alerts' text on their tints, and links inside alerts.
    ("danger", "surface", 4.5),
    ("text", "danger-bg", 4.5),
    ("text", "success-bg", 4.5),
    ("text", "info-bg", 4.5),
    ("link", "info-bg", 4.5),
    // Buttons.
    ("on-accent", "accent", 4.5),
    ("on-accent", "accent-hover", 4.5),
    ("on-danger", "danger", 4.5),
    ("on-danger", "danger-hover", 4.5),
    // Badges.
    ("danger", "danger-bg", 4.5),
    ("success", "success-bg", 4.5),
    ("warning", "warning-bg", 4.5),
    ("info", "info-bg", 4.5),
    // Non-text: the focus ring and the edges of inputs and buttons.
    ("focus", "bg", 3.0),
    ("focus", "surface", 3.0),
    ("control-border", "surface", 3.0),
    ("danger", "surface", 3.0),
];

fn check(theme: &str, colours: &Palette) -> Vec<String> {
    let mut failures = Vec::new();
    for (fg, bg, min) in PAIRS {
        let (Some(f), Some(b)) = (colours.get(*fg), colours.get(*bg)) else {
            failures.push(format!("{theme}: --{fg} or --{bg} is missing"));
            continue;
        };
        let r = ratio(*f, *b);
        if r < *min {
            failures.push(format!(
                "{theme}: --{fg} on --{bg} is {r:.2}:1, below {min}:1"
            ));
        }
    }
    failures
}

#[test]
fn the_contrast_formula_matches_known_values() {
    let black = (0.0, 0.0, 0.0);
    let white = (255.0, 255.0, 255.0);
    assert!((ratio(black, white) - 21.0).abs() < 1e-9);
    assert!((ratio(white, white) - 1.0).abs() < 1e-9);
    // #767676 on white is the classic just-passing grey, 4.54:1.
    let grey = (118.0, 118.0, 118.0);
    assert!((ratio(grey, white) - 4.54).abs() < 0.01);
    // And #777777 just fails.
    assert!(ratio((119.0, 119.0, 119.0), white) < 4.5);
}

#[test]
fn every_text_colour_pair_meets_wcag_aa_in_both_themes() {
    let light = palette("[data-theme=\"light\"] {");
    let dark = palette("[data-theme=\"dark\"] {");
    let mut failures = check("light", &light);
    failures.extend(check("dark", &dark));
    assert!(failures.is_empty(), "{failures:#?}");
}

#[test]
fn the_system_dark_block_is_the_dark_theme() {
    let dark = palette("[data-theme=\"dark\"] {");
    let system = palette(":root[data-theme=\"system\"],");
    assert_eq!(dark, system, "keep the two dark blocks in step");
    assert!(check("system dark", &system).is_empty());
}
