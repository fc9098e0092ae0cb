//! Issue 9, token scopes through the real `ferry` CLI: a `--scope` written as an image name
//! prefix (`127.0.0.1:5001/team`) and one written as ferry's repository for it
//! (`127.0.0.1_5001/team`, the form the registry API and `_catalog` show) mean the same
//! repositories, and are stored in one form.

use ferry_tests::ferry::FerryServer;
use ferry_tests::oci::{ImageSpec, OciLayout};

#[test]
fn a_scope_in_the_repository_form_lets_its_token_publish_there() {
    // Regression: `--scope 127.0.0.1_5001/team` was accepted, but compared against normalised
    // image names (`127.0.0.1:5001/team/app`) it never matched, so the token could publish
    // nothing.
    let server = FerryServer::start();
    let tmp = tempfile::tempdir().unwrap();
    let mut layout = OciLayout::new(tmp.path().join("img"));
    let image = layout.add_image(ImageSpec::default());
    layout.tag(&image, "v1");
    let source = layout.reference("v1");

    for (name, scope) in [
        ("ci-repository-form", "127.0.0.1_5001/team"),
        ("ci-image-form", "127.0.0.1:5001/team"),
    ] {
        let token = server
            .token_command(&[
                "create",
                "--role",
                "publisher",
                "--scope",
                scope,
                "--name",
                name,
            ])
            .trim()
            .to_string();
        let inside = server.publish_as(
            &[&source, "--image", "127.0.0.1:5001/team/app"],
            Some(&token),
        );
        assert!(
            inside.status.success(),
            "{name} (--scope {scope}) could not publish 127.0.0.1:5001/team/app: {}",
            String::from_utf8_lossy(&inside.stderr)
        );
        let outside = server.publish_as(
            &[&source, "--image", "127.0.0.1:5001/other/app"],
            Some(&token),
        );
        let stderr = String::from_utf8_lossy(&outside.stderr);
        assert!(
            !outside.status.success()
                && stderr.contains("may publish only under 127.0.0.1:5001/team"),
            "{name} (--scope {scope}) outside its scope: {stderr}"
        );
    }

    // One stored form, the image form, whichever was written.
    let list = server.token_command(&["list"]);
    assert!(
        !list.contains("127.0.0.1_5001") && list.matches("127.0.0.1:5001/team").count() == 2,
        "{list}"
    );
}
