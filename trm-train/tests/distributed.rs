//! Several devices: what burn 0.22.1's collective operations do on the backends this project
//! can test without a GPU.
//!
//! Data-parallel training averages the replicas' gradients with
//! `burn::tensor::distributed::all_reduce`. In burn 0.22.1 only the CUDA runtime (through NCCL)
//! implements it: burn-ndarray, the backend of every CPU run and of CI, has a single device and no
//! collective operations, and burn-wgpu has no transport between its devices. So `trm-train` has
//! no multi-device setting (README, "Several devices"). These tests pin that state: they fail the
//! day burn's all-reduce runs on one of these backends, which is when the multi-device trainer
//! and its equivalence test can be built and tested here.

use std::panic::{AssertUnwindSafe, catch_unwind};

use burn::tensor::distributed::{
    DistributedConfig, DistributedContext, ReduceOperation, all_reduce,
};
use burn::tensor::{Device, DeviceType, Tensor};
use trm_train::train::run::train_device;

const NOW_SUPPORTED: &str = "burn's all-reduce ran: data-parallel training can now be built and \
    tested on this backend (trm-train README, 'Several devices')";

/// The panic message of `f` (with the panic hook silenced), or `None` when it returns.
fn panic_message(f: impl FnOnce()) -> Option<String> {
    let hook = std::panic::take_hook();
    std::panic::set_hook(Box::new(|_| {}));
    let result = catch_unwind(AssertUnwindSafe(f));
    std::panic::set_hook(hook);
    let err = result.err()?;
    Some(if let Some(s) = err.downcast_ref::<String>() {
        s.clone()
    } else if let Some(s) = err.downcast_ref::<&str>() {
        (*s).to_string()
    } else {
        "(not a string)".to_string()
    })
}

fn mean() -> DistributedConfig {
    DistributedConfig {
        all_reduce_op: ReduceOperation::Mean,
    }
}

/// A gradient-sized all-reduce on `device`, read back as the optimiser step would read it.
fn all_reduce_mean(device: &Device) -> Vec<f32> {
    let grad = Tensor::<1>::from_floats([1.0, -2.0, 3.0], device);
    all_reduce(grad, ReduceOperation::Mean, vec![device.clone()])
        .resolve()
        .into_data()
        .try_to_vec::<f32>()
        .unwrap()
}

#[test]
fn burn_ndarray_is_one_device() {
    let devices = Device::enumerate(DeviceType::NdArray).into_vec();
    assert_eq!(
        devices.len(),
        1,
        "burn-ndarray now lists {} devices: {devices:?}",
        devices.len()
    );
}

#[test]
fn burn_collectives_refuse_the_ndarray_training_device() {
    let device = train_device();
    let unsupported = "Distributed operations are not supported";

    // Starting the communication server of the device group.
    let msg = panic_message(|| drop(DistributedContext::init(vec![device.clone()], mean())))
        .expect(NOW_SUPPORTED);
    eprintln!("burn-ndarray, DistributedContext::init: {msg}");
    assert!(msg.contains(unsupported), "unexpected panic: {msg}");

    // The all-reduce itself, as the gradient averaging would call it.
    let msg = panic_message(|| drop(all_reduce_mean(&device))).expect(NOW_SUPPORTED);
    let first = msg.split('(').next().unwrap_or_default();
    eprintln!("burn-ndarray, all_reduce: {first}");
    assert!(msg.contains(unsupported), "unexpected panic: {msg}");
}

/// The same on burn-wgpu (lavapipe in CI). Built with `--features wgpu`, run with
/// `TRM_TEST_WGPU=1`.
#[cfg(feature = "wgpu")]
#[test]
fn wgpu_has_no_all_reduce() {
    if std::env::var("TRM_TEST_WGPU").as_deref() != Ok("1") {
        eprintln!("SKIPPED: set TRM_TEST_WGPU=1 to try burn's all-reduce on burn-wgpu");
        return;
    }
    let device =
        trm_train::train::run::device_for(trm_train::train::config::Backend::Wgpu).unwrap();
    let msg = panic_message(|| {
        let _context = DistributedContext::init(vec![device.clone()], mean());
        drop(all_reduce_mean(&device));
    })
    .expect(NOW_SUPPORTED);
    eprintln!("burn-wgpu, all_reduce: {msg}");
    assert!(
        msg.contains("no transport between its devices"),
        "unexpected panic: {msg}"
    );
}
