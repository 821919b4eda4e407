//! Services over the shared context, one per concern (see DESIGN.md, "Architecture").

pub mod pbx;
