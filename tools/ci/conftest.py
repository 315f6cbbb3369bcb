"""Header of the smoke set: the line in use and the installed versions of its stack."""
from importlib.metadata import PackageNotFoundError, version

DISTRIBUTIONS = ('torch', 'numpy', 'opencv-python', 'opencv-python-headless', 'panopticapi-lite',
                 'openmim')


def pytest_report_header(config) -> list:
    import cv2
    import mmcv
    import mmdet
    import mmengine
    import mmpretrain
    import mmseg

    import pmtseg_mm
    found = []
    for dist in DISTRIBUTIONS:
        try:
            found.append(f'{dist} {version(dist)}')
        except PackageNotFoundError:
            found.append(f'{dist} -')
    return [f'pmtseg_mm {pmtseg_mm.__version__} on the {pmtseg_mm.STACK} line: '
            + ', '.join(f'{m.__name__} {m.__version__}'
                        for m in (mmcv, mmdet, mmseg, mmengine, mmpretrain)),
            ', '.join(found) + f', cv2 {cv2.__version__}']
