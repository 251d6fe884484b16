"""Two runs checking one new directory at once (a shared image cache on a fresh machine): neither is refused."""

import threading

from archmatrix.inputs import InputError
from archmatrix.inputs.files import check_writable_dir


def test_concurrent_checks_of_one_new_directory_all_pass_and_leave_nothing(tmp_path):
    refused = []

    def check(round_):
        try:
            check_writable_dir(tmp_path / f"cache{round_}" / "archmatrix" / "images", "--image-cache", keep=False)
        except InputError as error:
            refused.append(str(error))

    for round_ in range(200):
        threads = [threading.Thread(target=check, args=(round_,)) for _ in range(4)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    assert refused == []
    # No write-check file is left; an empty directory may be, where one try removed what it made while another
    # try's file was in it: the run that asked for the directory makes it anyway.
    assert [path for path in tmp_path.rglob("*") if not path.is_dir()] == []
