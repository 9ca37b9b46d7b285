//! Pure statistics of the A/B analysis: no I/O, no async. Distributions
//! come from statrs; every function is checked against SciPy or NumPy
//! reference values in `tests.rs` (script in `reference/`).

pub mod bootstrap;
pub mod bucket;
pub mod descriptive;
pub mod effect;
pub mod error;
pub mod mann_whitney;
pub mod power;
pub mod ratio;
pub mod srm;
pub mod welch;

#[cfg(test)]
mod tests;
