//! Validation requested without the layer installed must fail loudly, never run unvalidated.
//! Its own test binary, because it changes the process environment the Vulkan loader reads.

use hlo_vulkan::{Context, ContextOptions, VulkanError};

#[test]
fn missing_validation_layer_is_an_error() {
    // The loader looks for explicit layers only in VK_LAYER_PATH when it is set.
    std::env::set_var("VK_LAYER_PATH", "/nonexistent-hlo-vulkan-test");
    let err = Context::new(&ContextOptions { validation: true, ..Default::default() }).expect_err("must fail");
    assert!(matches!(err, VulkanError::ValidationUnavailable { .. }), "{err}");
    assert!(err.to_string().contains("apt-get install vulkan-validationlayers"), "{err}");
    // Without validation the same environment works.
    Context::new(&ContextOptions::default()).expect("a device without validation");
}
