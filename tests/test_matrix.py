from archmatrix.core.matrix import CheckRecord, aggregate
from archmatrix.report.json_report import matrix_document, schema_problems
from archmatrix.report.markdown import matrix_markdown


def records(arch, accel, outcomes, detail="", facts=None, host="h"):
    return [CheckRecord(host, arch, accel, check, outcome, detail, facts or {})
            for check, outcome in zip(("binary", "machine", "accelerator", "console", "boot"), outcomes, strict=True)]


def host_facts(label, **more):
    return {"label": label, "hostname": f"{label}-name", "arch": "x86_64", "guest_arches": ["aarch64"],
            "libvirt_uri": "qemu:///system", "kvm": None} | more


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


def test_cells_of_several_hosts_follow_the_run_order_of_hosts():
    cells = aggregate(records("aarch64", "tcg", ["pass"] * 5, host="trixie")
                      + records("aarch64", "tcg", ["fail"] * 5, host="here"), ["here", "trixie"])
    assert [(c.host, c.id, c.status) for c in cells] == [("here", "aarch64-tcg", "fail"),
                                                         ("trixie", "aarch64-tcg", "pass")]


def test_markdown_puts_arches_in_rows_and_reasons_in_footnotes():
    cells = aggregate(records("aarch64", "tcg", ["pass"] * 5, facts={"login_s": 1.84})
                      + records("aarch64", "kvm", ["unsupported"] * 5, "no KVM for aarch64 here"))
    text = matrix_markdown(matrix_document(cells, [host_facts("h")], "2026-11-23", 9.0, False))
    assert "| guest arch | tcg | kvm | trait |" in text
    assert "| aarch64 | ✅ pass 1.8 s | ➖ unsupported [1] | COMPUTE_ARCH_AARCH64 |" in text
    assert "[1]: no KVM for aarch64 here" in text and "Incomplete run" in text
    assert "All hosts" not in text  # one host: no overview


def test_several_hosts_get_a_section_each_and_an_overview_side_by_side():
    cells = aggregate(records("aarch64", "tcg", ["pass"] * 5, facts={"login_s": 1.8, "machine_canonical": "virt-7.2"},
                              host="here")
                      + records("aarch64", "tcg", ["pass"] * 5, facts={"login_s": 1.5,
                                                                         "machine_canonical": "virt-10.0"},
                                host="trixie"), ["here", "trixie"])
    hosts = [host_facts("here", libvirt_version="9.0.0"), host_facts("trixie", libvirt_version="11.3.0")]
    document = matrix_document(cells, hosts, "2026-11-25", 9.0, True)
    assert schema_problems(document) == []
    assert [h["honest_traits"] for h in document["hosts"]] == [["COMPUTE_ARCH_AARCH64"]] * 2
    text = matrix_markdown(document)
    assert "| guest arch | here tcg | trixie tcg |" in text
    assert "| aarch64 | ✅ pass 1.8 s `virt-7.2` | ✅ pass 1.5 s `virt-10.0` |" in text
    assert "## here: here-name (x86_64)" in text and "## trixie: trixie-name (x86_64)" in text
    assert "libvirt 11.3.0" in text


def test_every_arch_the_host_lists_is_accounted_for_in_the_report():
    from archmatrix.core.matrix import arches_beyond_run
    from archmatrix.report.markdown import beyond_run_lines

    # A host with a newer QEMU may list an arch the catalog lacks.
    listed = ["aarch64", "loongarch64", "riscv32", "x86_64"]
    cells = [{"arch": "aarch64"}, {"arch": "x86_64"}]
    not_run, unknown = arches_beyond_run(listed, cells)
    assert (not_run, unknown) == (["riscv32"], ["loongarch64"])
    lines = beyond_run_lines({"arches_not_run": not_run, "arches_unknown": unknown})
    assert "Also listed by this host's libvirt, not run: riscv32 (`--arch all` runs every one)" in lines
    assert "Listed by this host's libvirt, unknown to the harness's catalog: loongarch64" in lines
    assert beyond_run_lines({"arches_not_run": [], "arches_unknown": []}) == []


def test_a_cell_whose_judged_checks_pass_is_a_pass_and_names_what_was_not_judged():
    reason = "mips64-tcg ssh unsupported: mips64: its built-in image's /init is images/init.c"
    ssh = [CheckRecord("h", "mips64", "tcg", check, "unsupported", reason) for check in ("ssh", "guest-arch")]
    cell, = aggregate(records("mips64", "tcg", ["pass"] * 5) + ssh)
    assert cell.status == "pass"
    assert cell.reason == f"ssh, guest-arch not judged: {reason}"
    failed, = aggregate(records("mips64", "tcg", ["pass"] * 4 + ["fail"], "no banner") + ssh)
    assert failed.status == "fail" and failed.reason == "no banner"


def test_an_inconclusive_cell_is_worse_than_a_pass_better_than_a_fail_and_its_reason_says_why():
    still = "inconclusive: no banner: timeout after 480 s; the guest was still printing when its 480 s bound ran out"
    cells = aggregate(records("aarch64", "tcg", ["pass", "pass", "pass", "inconclusive", "inconclusive"], still)
                      + records("s390x", "tcg", ["pass", "pass", "pass", "fail", "inconclusive"], "console: none")
                      + records("x86_64", "tcg", ["pass", "pass", "pass", "pass", "unsupported"], "no SSH"))
    assert [(c.id, c.status) for c in cells] == [("aarch64-tcg", "inconclusive"), ("s390x-tcg", "fail"),
                                                 ("x86_64-tcg", "pass")]
    assert cells[0].reason == still
    document = matrix_document(cells, [host_facts("h", tcg_speed={"factor": 54.0, "payload": "x86_64", "seconds": 16.2,
                                                                  "reference_s": 0.3, "detail": "the x86_64 payload's "
                                                                  "loop ran 16.20 s under TCG"})],
                               "2026-12-06", 9.0, True)
    assert schema_problems(document) == []
    text = matrix_markdown(document)
    assert "| aarch64 | ⏳ inconclusive [1] |" in text and f"[1]: {still}" in text
    assert "TCG speed: TCG bounds x54; the x86_64 payload's loop ran 16.20 s under TCG" in text
