//! The Tiny Recursive Model in burn, numerically matching the official PyTorch code
//! (`models/recursive_reasoning/trm.py`, `models/losses.py`, `models/sparse_embedding.py`,
//! `pretrain.py`); the specification is `shared/fixtures/reference/README.md`.
//!
//! - [`config`]: [`TrmConfig`] (every official knob, parsed from the official JSON),
//! - [`layers`]: linear, SwiGLU, RMSNorm, RoPE attention, the post-norm block,
//! - [`fused`]: the residual SwiGLU + RMSNorm sub-block as one CPU op with its own backward,
//! - [`trm`]: the network and one supervision step ([`Trm::inner_forward`]),
//! - [`act`]: the ACT wrapper ([`Trm::act_step`], [`Carry`], [`Batch`], [`Mode`]),
//! - [`loss`]: stable-max CE + Q-halt BCE and the metrics ([`act_loss`]),
//! - [`optim`]: AdamATan2, sign-SGD, the lr schedule,
//! - [`ema`]: weight EMA,
//! - [`weights`]: official state-dict names and safetensors I/O.

pub mod act;
pub mod config;
pub mod ema;
pub mod fused;
pub mod layers;
pub mod loss;
pub mod optim;
pub mod trm;
pub mod weights;

pub use act::{Batch, Carry, Mode, StepOutput};
pub use config::{PosEncoding, TrmConfig};
pub use ema::Ema;
pub use loss::{IGNORE_LABEL_ID, LossOutput, Metrics, act_loss};
pub use optim::{
    AdamAtan2, AdamAtan2Config, GradSource, LrSchedule, SignSgdConfig, named_grads, sign_sgd_step,
};
pub use trm::{InnerCarry, InnerOutput, Trm};
pub use weights::SafetensorsFile;
