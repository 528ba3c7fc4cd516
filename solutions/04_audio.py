"Worked solutions of chapter 04_audio's exercises."
import librosa
import numpy as np

from mug_nb.audio import mel_frame_to_ms


def bins_below(hz: float) -> int:
    "4.1: the 128 mel bins are centred on the inner 128 of 130 mel-spaced frequencies from 0 to 11025 Hz."
    centres = librosa.mel_frequencies(n_mels=130, fmin=0.0, fmax=11025.0)[1:-1]
    return int((centres < hz).sum())


def find_clicks(mel: np.ndarray) -> np.ndarray:
    "4.2: onset strength (mean rise over bins); a click starts where it first passes a threshold, 100 ms after the last."
    flux = np.r_[0, np.maximum(np.diff(mel, axis=1), 0).mean(axis=0)]
    clicks = []
    for i in np.flatnonzero(flux > 0.15 * flux.max()):
        if not clicks or mel_frame_to_ms(i - clicks[-1]) > 100: clicks.append(i)
    return mel_frame_to_ms(np.array(clicks))


SOLUTIONS = {
    "4.1": bins_below,
    "4.2": find_clicks,
    "4.3": (("songs-a", "b.ogg"), ("songs", "a-b.ogg")),
}
