from harness.matrix import CheckRecord, aggregate
from harness.report.json_report import matrix_document
from harness.report.markdown import matrix_markdown


def records(arch, accel, outcomes, detail="", facts=None):
    return [CheckRecord(arch, accel, check, outcome, detail, facts or {})
            for check, outcome in zip(("binary", "machine", "accelerator", "console", "boot"), outcomes, strict=True)]


def test_cell_status_is_its_worst_check_and_cells_follow_the_catalog_order():
    cells = aggregate(
        records("x86_64", "kvm", ["unsupported"] * 5, "KVM claimed-but-broken")
        + records("s390x", "tcg", ["pass", "pass", "pass", "fail", "pass"], "consoles enabled: none")
        + records("aarch64", "tcg", ["pass"] * 5, facts={"login_s": 1.8})
        + records("mipsel", "tcg", ["error"] + ["pass"] * 4, "libvirtd went away")
    )
    assert [(c.id, c.status) for c in cells] == [
        ("aarch64-tcg", "pass"), ("s390x-tcg", "fail"), ("mipsel-tcg", "error"), ("x86_64-kvm", "unsupported")]
    assert cells[1].reason == "consoles enabled: none" and cells[1].checks["console"]["outcome"] == "fail"
    assert cells[0].reason == ""


def test_markdown_puts_arches_in_rows_and_reasons_in_footnotes():
    cells = aggregate(records("aarch64", "tcg", ["pass"] * 5, facts={"login_s": 1.84})
                      + records("aarch64", "kvm", ["unsupported"] * 5, "no KVM for aarch64 here"))
    host = {"hostname": "h", "arch": "x86_64", "guest_arches": ["aarch64"]}
    text = matrix_markdown(matrix_document(cells, host, "2026-11-23", 9.0, False))
    assert "| guest arch | tcg | kvm | trait |" in text
    assert "| aarch64 | ✅ pass 1.8 s | ➖ unsupported [1] | COMPUTE_ARCH_AARCH64 |" in text
    assert "[1]: no KVM for aarch64 here" in text and "Incomplete run" in text
