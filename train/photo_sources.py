"""The second photo set for ``psenet-stream data``: more varied scenes from five more Debian packages.

The first set (``data_fetch.PHOTOS``) is mostly daylight nature and test-chart photos. This one adds
night, indoor, backlit and low-key scenes, each tagged with one of ``TAGS``, and holds out about one
in four of every tag for the test split, so the held-out set has hard exposures too.

Everything here is data plus one reader; ``data_fetch.fetch`` downloads the packages below with
``apt-get download`` at the pinned version, checks the .deb's sha256, unpacks it with
``dpkg-deb -x``, checks each member's sha256 (``Photo.sha256``, of the bytes as packaged) and
resizes to a long side of at most 1024 px, exactly as for the first set.

A member is either a path inside the unpacked package, or ``BUNDLE::INNER`` for a file stored in
a Qt resource bundle (``.rcc``; the educational suite keeps its photos that way): see
``read_member``.

Licences (also copied per package into ``DEST/licenses/<package>.copyright``):

* gcompris-qt-data: GPL-3+ (the package default), except the files its copyright file lists one by
  one with author, source and licence (CC-BY-SA, GFDL, GPL-3, ...: koala, kangaroo, polar bear,
  the farm animals and the sea photos here);
* lxqt-themes: the wallpapers are CC-BY-SA-3.0, credits in ``usr/share/lxqt/wallpapers/License``
  (copied to ``DEST/licenses/lxqt-themes-wallpapers-License.txt``);
* tuxpaint-data: GPL-2+ (the package default, which covers the photo templates);
* scribus-template: the templates used here (br2, cal2, menu2, by Riku Leino) are public domain;
* kodi-data: the two Estuary home images are CC0-1.0.
"""

from __future__ import annotations

import functools
import struct
import zlib
from pathlib import Path
from typing import NamedTuple

from psenet_stream.errors import InputError

TAGS = ("night", "indoor", "backlit", "low-key", "day")

# package: (version, .deb file name as apt-get download writes it, sha256 of the .deb)
DEBS: dict[str, tuple[str, str, str]] = {
    "gcompris-qt-data": (
        "3.1-2",
        "gcompris-qt-data_3.1-2_all.deb",
        "e9cf06ab2105529068df73085784e835d2ff03f870d2a8091f09125d40abac9f",
    ),
    "lxqt-themes": ("1.2.0-1", "lxqt-themes_1.2.0-1_all.deb", "d518df36b515b09d36cb00b12645dd8ce170bb82bb0966297741905ce3edc8e1"),
    "kodi-data": (
        "2:20.1+dfsg-1",
        "kodi-data_2%3a20.1+dfsg-1_all.deb",
        "acecf3740d507edc4e9c943daf6155e24f82be83daf3fe423c54425ae5ff6a76",
    ),
    "tuxpaint-data": (
        "1:0.9.28-sdl2-1",
        "tuxpaint-data_1%3a0.9.28-sdl2-1_all.deb",
        "f5d0de8f9a70d2efc1241d19f26168cb8bf279f1b77abd3631e7a1a55c40e5e5",
    ),
    "scribus-template": (
        "1.2.4.1-6",
        "scribus-template_1.2.4.1-6_all.deb",
        "683bf35e43867cb17613d6807aa0238720d8526b1f524b9376404747a3e6128b",
    ),
}

LICENSES = {
    "gcompris-qt-data": "GPL-3+, or the per-file licence, author and source in licenses/gcompris-qt-data.copyright",
    "lxqt-themes": "CC-BY-SA-3.0 (credits in licenses/lxqt-themes-wallpapers-License.txt; licenses/lxqt-themes.copyright)",
    "tuxpaint-data": "GPL-2+ (licenses/tuxpaint-data.copyright)",
    "scribus-template": "public domain (templates by Riku Leino, see licenses/scribus-template.copyright)",
    "kodi-data": "CC0-1.0 (Estuary home images, see licenses/kodi-data.copyright)",
}

# Licence files besides the package's copyright file, copied to DEST/licenses: (member, file name there)
EXTRA_LICENSES = {"lxqt-themes": [("usr/share/lxqt/wallpapers/License", "lxqt-themes-wallpapers-License.txt")]}


class Photo(NamedTuple):
    source: str  # a package in DEBS, or opencv-doc (already fetched for the first set)
    member: str  # path in the unpacked package, or BUNDLE::INNER for a file in a .rcc bundle
    tag: str  # one of TAGS: the scene's lighting
    split: str  # "train" or "test"
    sha256: str  # of the member's bytes as packaged (before any resize)


RCC_SEP = "::"
_GC = "usr/share/gcompris-qt/rcc/"
_LXQT = "usr/share/lxqt/wallpapers/"
_TUX = "usr/share/tuxpaint/templates/"
_SCRIBUS = "usr/share/scribus/templates/"
_KODI = "usr/share/kodi/addons/skin.estuary/extras/home-images/"
_OCV = "usr/share/doc/opencv-doc/examples/"


def _gc(activity: str, name: str) -> str:
    return f"{_GC}{activity}.rcc{RCC_SEP}gcompris/src/activities/{activity}/resource/{name}"


# name in DEST -> Photo. Names are unique across both sets (prefix = package).
# fmt: off
PHOTOS: dict[str, Photo] = {
    "gcompris-dolphin.webp": Photo("gcompris-qt-data", _gc("erase", "dolphin.webp"), "low-key", "test",
        "2847f84c4c9698a9b55124145dd679868da1239b0f174db8f2c83e173cbb9d8c"),
    "gcompris-swans.webp": Photo("gcompris-qt-data", _gc("erase", "swans.webp"), "low-key", "train",
        "5fe69699bf37d702c3ca9b2b76c727aff717494ba368272952e05ac233028eda"),
    "gcompris-gorilla.webp": Photo("gcompris-qt-data", _gc("erase", "gorilla.webp"), "day", "train",
        "5ce6131ce966f585b263e2f04cbd504dd7366f99885ca3cbef12aa25d559b5d4"),
    "gcompris-kingfisher.webp": Photo("gcompris-qt-data", _gc("erase", "kingfisher.webp"), "day", "test",
        "b637658d7e0f8f555b5683a8c912646d57ba37be6ba9684df893a1d07ee9e637"),
    "gcompris-cheetah.webp": Photo("gcompris-qt-data", _gc("erase", "cheetah.webp"), "day", "test",
        "b9d85c2e2899036e7b0caf458696586adf63d431e5034362bb48a0abd8d29149"),
    "gcompris-meerkats.webp": Photo("gcompris-qt-data", _gc("erase", "meerkats.webp"), "day", "train",
        "459198d83393a1835c76861d901144d209a0bead29f4b9d2ef5b472eeab01fdd"),
    "gcompris-red_panda.webp": Photo("gcompris-qt-data", _gc("erase", "red_panda.webp"), "day", "train",
        "ec755f7b9d8953037161a7cf4f01270fdc92382913b33d987ceb27c1dfa6ded1"),
    "gcompris-chamaeleon.webp": Photo("gcompris-qt-data", _gc("erase", "chamaeleon.webp"), "day", "train",
        "8a338c7df32949c5a5e1fef4b901d554b1c1af71c6a5bd81882522c11e0c41e5"),
    "gcompris-crab.webp": Photo("gcompris-qt-data", _gc("erase", "crab.webp"), "day", "train",
        "822be2d08adc89a71e6eeff1500eea684c6f0961c98ddb1b23f0e66bbae4f987"),
    "gcompris-penguin.webp": Photo("gcompris-qt-data", _gc("erase", "penguin.webp"), "day", "train",
        "1c8be6df0a6ff161ad49a789b5699f842b18f5dc93bf6b66fd5f1342266643b2"),
    "gcompris-heron.webp": Photo("gcompris-qt-data", _gc("erase", "heron.webp"), "day", "test",
        "63006dabe8b74b826eba8d8d80c4330ff38f57fd3e1010254f4644d830c48067"),
    "gcompris-kitten.webp": Photo("gcompris-qt-data", _gc("erase", "kitten.webp"), "day", "train",
        "c6f3a52585a3d6179c78e15375a9d9b11f37bfd0ac33b477f3b67cda06c59727"),
    "gcompris-brandenburgGate.webp": Photo("gcompris-qt-data", _gc("explore_monuments", "germany/brandenburgGate.webp"), "night", "train",
        "2cb312c79a20e0cd8ed865c5b15a95af86d8d95a0ab96da8814c073857abf4bb"),
    "gcompris-gatewayofIndia.webp": Photo("gcompris-qt-data", _gc("explore_monuments", "india/gatewayofIndia.webp"), "night", "test",
        "8d1053776a85a9703f819ae6a82f981cbfa9a8961712404afee235afd87a0e48"),
    "gcompris-lincolnMemorial.webp": Photo("gcompris-qt-data", _gc("explore_monuments", "usa/lincolnMemorial.webp"), "night", "train",
        "52eab4d110bd168e644c9152a60a911cdd8ba5e3d4b661e966f256a074f66fb8"),
    "gcompris-ajantaCave.webp": Photo("gcompris-qt-data", _gc("explore_monuments", "india/ajantaCave.webp"), "day", "train",
        "7dbf980b3711f7557ed4d5748e494c48f72ac34ff601cf1a46f272ff9ab20543"),
    "gcompris-hawaMahal.webp": Photo("gcompris-qt-data", _gc("explore_monuments", "india/hawaMahal.webp"), "day", "train",
        "4edb7eed9db596bd7f3ad98eb34a82c04c32ff1d57aeec80a815c1248feb8e04"),
    "gcompris-colosseum.webp": Photo("gcompris-qt-data", _gc("explore_monuments", "wonders/colosseum.webp"), "day", "train",
        "0d38a0c2d4910f895c003825999345a86da080ff76d709bba923153cbd654945"),
    "gcompris-citedeCarcassonne.webp": Photo("gcompris-qt-data", _gc("explore_monuments", "france/citedeCarcassonne.webp"), "day", "test",
        "b9de4b334e76df53df948de034f4bcc744be682a904ad7c61a9f9f7ac8de326b"),
    "gcompris-petra.webp": Photo("gcompris-qt-data", _gc("explore_monuments", "wonders/petra.webp"), "day", "train",
        "cc782ccdd5b508299ad17402df2d0d375c26e1f9b18e4d2e6c3fd474fcaeb458"),
    "gcompris-neuschwansteinCastle.webp": Photo("gcompris-qt-data", _gc("explore_monuments", "germany/neuschwansteinCastle.webp"), "day", "train",
        "15ec5fcb8758d54efa65581b9682e5cc766d700f3f329d700a06d0550d2c8e03"),
    "gcompris-konarkSunTemple.webp": Photo("gcompris-qt-data", _gc("explore_monuments", "india/konarkSunTemple.webp"), "day", "train",
        "c94ddb83bb2d878fecaf0677e8e6c1e73ede7dd39bd69f5e84d2f68e84515156"),
    "gcompris-qutubMinar.webp": Photo("gcompris-qt-data", _gc("explore_monuments", "india/qutubMinar.webp"), "backlit", "train",
        "dea912cbd3950dacbba8cd810e39713525c27d54e58ce6ba7502a0f83cf24c95"),
    "gcompris-goldenTemple.webp": Photo("gcompris-qt-data", _gc("explore_monuments", "india/goldenTemple.webp"), "day", "train",
        "ec52355726f8c36c78f0db526dc0fd8c823f5572a5ced04e8914a82a7b496a8c"),
    "gcompris-music-america.webp": Photo("gcompris-qt-data", _gc("explore_world_music", "music/america.webp"), "indoor", "train",
        "72af64588442d1e251ed33568629d35bf88b3fa348def66265320571bdda0927"),
    "gcompris-music-ireland.webp": Photo("gcompris-qt-data", _gc("explore_world_music", "music/ireland.webp"), "low-key", "train",
        "20ef5a10a55b03632dc5fec2434c3a7814c15abbbe7489dedb4aa97ee6b111af"),
    "gcompris-music-italy.webp": Photo("gcompris-qt-data", _gc("explore_world_music", "music/italy.webp"), "indoor", "train",
        "b30a023e5d36bb053a4ee8e57bd0b4fa2042e3d0a5ab8e663a341ba6e35672ad"),
    "gcompris-music-japan.webp": Photo("gcompris-qt-data", _gc("explore_world_music", "music/japan.webp"), "night", "train",
        "0f0aa2d3116e01acdc693b626b1b60699124145670e624121289a7ced5020679"),
    "gcompris-music-orchestra.webp": Photo("gcompris-qt-data", _gc("explore_world_music", "music/orchestra.webp"), "indoor", "test",
        "b4a6d85a40cefbd33cc6801ffcbb3ad7026d8d79be134c753b4f12b0b862cedf"),
    "gcompris-music-mexico.webp": Photo("gcompris-qt-data", _gc("explore_world_music", "music/mexico.webp"), "day", "train",
        "cd1286e5d7649bc446a47297f0127a38295e5a5f39a641b528e0c5063675c9d1"),
    "gcompris-farm-cat.webp": Photo("gcompris-qt-data", _gc("explore_farm_animals", "animals/cat.webp"), "indoor", "train",
        "ab7c3e1b04e80bc567b00dba49946918b5a38be1f37618f0d2b4887ef5792770"),
    "gcompris-farm-duck.webp": Photo("gcompris-qt-data", _gc("explore_farm_animals", "animals/duck.webp"), "low-key", "train",
        "fa4572f2022a3aded4b627b9234fb8abf1658d125b267dc8d28cb1a8213c3b60"),
    "gcompris-jaguar.webp": Photo("gcompris-qt-data", _gc("explore_world_animals", "animals/jaguar.webp"), "day", "train",
        "22704727b6643480c62487ffb2d9fd618a3f499dde84b1eb789d4b0b11477e85"),
    "gcompris-kangaroo.webp": Photo("gcompris-qt-data", _gc("explore_world_animals", "animals/kangaroo.webp"), "day", "train",
        "683964b6f57fdced539b3da8983ef4f4c9d78a0be3e251363fc5a17d4fb4fe7e"),
    "gcompris-polar_bear.webp": Photo("gcompris-qt-data", _gc("explore_world_animals", "animals/polar_bear.webp"), "day", "test",
        "0544cef0a7d6940d3c143a04eecb7065bf9b90d7d367ad8bacbef6631b506070"),
    "gcompris-koala.webp": Photo("gcompris-qt-data", _gc("explore_world_animals", "animals/koala.webp"), "day", "train",
        "77b243c27d79f3f5706497af5c1e8e9134f87d634def2b81e2074b572b575d18"),
    "gcompris-sea3.webp": Photo("gcompris-qt-data", _gc("clickgame", "sea3.webp"), "backlit", "train",
        "9c8236a6ade2a59fb05dfe03802cd9aa5d5e672c85731b136847287c33265974"),
    "gcompris-sea5.webp": Photo("gcompris-qt-data", _gc("clickgame", "sea5.webp"), "low-key", "train",
        "08c6d1ae0ea47c5136137148c817472da329ca1e67063b0fb3e60190e5c55b00"),
    "gcompris-sea6.webp": Photo("gcompris-qt-data", _gc("clickgame", "sea6.webp"), "low-key", "test",
        "42f7a4152c54f8bf065e8ad182472729a5374a6860c573a4de1ea0987e026cf3"),
    "lxqt-beam.png": Photo("lxqt-themes", _LXQT + "beam.png", "backlit", "train",
        "3d199194b048cb793c0ad558337cda3e16f14cd054168d1d813620e24a0a5659"),
    "lxqt-Valendas.png": Photo("lxqt-themes", _LXQT + "Valendas.png", "backlit", "train",
        "f2d275c51d116942cea8e7d80d30c7d3c130349a0695caf2aa235f926ae15759"),
    "lxqt-after-the-rain.jpg": Photo("lxqt-themes", _LXQT + "after-the-rain.jpg", "backlit", "test",
        "e6cb8b3e09b904cc493ff17fddcd564d4e46a1761d05adf972c285a1fd878234"),
    "lxqt-butterfly.png": Photo("lxqt-themes", _LXQT + "butterfly.png", "low-key", "train",
        "13175434d99075e075de7321942e66169e3c99ac9416024dcf4123bd3b38749c"),
    "lxqt-fog.jpg": Photo("lxqt-themes", _LXQT + "fog.jpg", "day", "test",
        "a8235344ee6b5ab1b6de3ccef731bcc0e6509cf33ce832db87eae1eb75987083"),
    "lxqt-drop.png": Photo("lxqt-themes", _LXQT + "drop.png", "day", "train",
        "3b726aea9a6f8af36431c6f1974f982f7f4c5a4443499500bda31be27e4ffde8"),
    "lxqt-flowers.png": Photo("lxqt-themes", _LXQT + "flowers.png", "day", "test",
        "3a935d8be4d6c9784f9079ff2814acd2de2c8406e9fe584be03e90264f37c371"),
    "lxqt-appleflower.png": Photo("lxqt-themes", _LXQT + "appleflower.png", "day", "train",
        "bae8a8eb8274b29509f1cbbfe250081331c5704a1fea25d5052166a0451e67f3"),
    "lxqt-cloud.png": Photo("lxqt-themes", _LXQT + "cloud.png", "day", "train",
        "522dbf79dfaff751cf8ef2f337c9d196a231fa096bc38806a76ce048b8c7b5a2"),
    "lxqt-this-is-not-windows.jpg": Photo("lxqt-themes", _LXQT + "this-is-not-windows.jpg", "day", "train",
        "2d885e0438c0ab244f818d33d8f745a1cc486558462faf9bf3948675c68ac227"),
    "lxqt-Butterfly-Kenneth-Wimer.jpg": Photo("lxqt-themes", _LXQT + "Butterfly-Kenneth-Wimer.jpg", "day", "train",
        "c237c26f6f0b18db3afa62a0eff13cb8208b79a1ef35aaadcb745d8f9faef146"),
    "tuxpaint-jellyfish.jpg": Photo("tuxpaint-data", _TUX + "jellyfish.jpg", "low-key", "train",
        "340228d44027370689e43fe44e3a01a3793d79224a7fd20b3d52f824a65f787d"),
    "tuxpaint-spiders_web.jpg": Photo("tuxpaint-data", _TUX + "spiders_web.jpg", "low-key", "train",
        "a105461c86ff3c61aa46a6bc75747da570cd836d5c5a465b8faefb564f55ed30"),
    "tuxpaint-trees_at_dusk.jpg": Photo("tuxpaint-data", _TUX + "trees_at_dusk.jpg", "backlit", "train",
        "9499116f8e8f494bd776b12b9cb4782a118662801ddff98c4127c866cf255720"),
    "tuxpaint-sun_behind_clouds.jpg": Photo("tuxpaint-data", _TUX + "sun_behind_clouds.jpg", "backlit", "train",
        "a76583449fb6cf58ca3fd88deac57932f5e0623df8f6ca733258a2ceab3abf91"),
    "tuxpaint-sun_behind_leaves.jpg": Photo("tuxpaint-data", _TUX + "sun_behind_leaves.jpg", "backlit", "test",
        "a6373334dc5af701d9e5f0efa0e1e4671202897a8e49db4b97d7e826b4590ff8"),
    "tuxpaint-redwoods_above.jpg": Photo("tuxpaint-data", _TUX + "redwoods_above.jpg", "backlit", "train",
        "cda5f9d27e979e01e22bc16fce24e00b175f4cbfa99e12aa414f308c9aa00745"),
    "tuxpaint-wool_mill_machine.jpg": Photo("tuxpaint-data", _TUX + "wool_mill_machine.jpg", "indoor", "train",
        "e66d36c482d32cc5bfd001923e584cf6398ef95039d92e9d2e65f64c33274a18"),
    "tuxpaint-lighthouse.jpg": Photo("tuxpaint-data", _TUX + "lighthouse.jpg", "day", "train",
        "bf92c1139da97690208a3948c9d1051649deb44bb51baa288820f5c64f9e6365"),
    "tuxpaint-sheep.jpg": Photo("tuxpaint-data", _TUX + "sheep.jpg", "day", "test",
        "cb408f8b3fc324798d012f71595a148f9fa360c17d1bde91371bd7c01e9cf881"),
    "tuxpaint-corn_maze.jpg": Photo("tuxpaint-data", _TUX + "corn_maze.jpg", "day", "train",
        "e3c5dfd777c38fbf79126795ba1165fee41e62402436196363a5e2d938a2d3be"),
    "tuxpaint-cliff.jpg": Photo("tuxpaint-data", _TUX + "cliff.jpg", "day", "test",
        "ff8da5b7a4eb5f5558a9768764871330ba245dc54ff55d5766129f47a45e7392"),
    "tuxpaint-ocean_waves.jpg": Photo("tuxpaint-data", _TUX + "ocean_waves.jpg", "day", "train",
        "b99c24c7148cb2935c7a9cfde12b81f368f8162e32349e554a8cb2dd44c5624e"),
    "tuxpaint-mossy_log.jpg": Photo("tuxpaint-data", _TUX + "mossy_log.jpg", "day", "train",
        "02ba4842fcf5f48f000d8325da89d85bedd8edc0d8cf551603dfdcfca12064e2"),
    "tuxpaint-trees_above.jpg": Photo("tuxpaint-data", _TUX + "trees_above.jpg", "backlit", "test",
        "d75bcb1c0c9cd3f9d9568b09f008e469c1e07ecc0fb84fe2aa858717228310c1"),
    "scribus-halfmoon.jpg": Photo("scribus-template", _SCRIBUS + "br2/halfmoon.jpg", "night", "train",
        "d2a3482836c79a3efcfe5b864d0866c0cd3395f3445d0a3a5a9dbb067a7484b5"),
    "scribus-moon.jpg": Photo("scribus-template", _SCRIBUS + "br2/moon.jpg", "night", "train",
        "5e5202c8c3618edb34ee4c6879d15244da1bb48c1e988038a84ed39c72cf41e3"),
    "scribus-moon-branches.jpg": Photo("scribus-template", _SCRIBUS + "cal2/moon.jpg", "night", "train",
        "16e51d2215b845f3b091e01573b948d564cba327c7d306373d2b6368b75ce6ce"),
    "scribus-sunset.jpg": Photo("scribus-template", _SCRIBUS + "br2/sunset.jpg", "night", "test",
        "589b2b9b46b28014dd3a0980f9bced28ee04f7b767f4bded2311a98f61fba823"),
    "scribus-nature.jpg": Photo("scribus-template", _SCRIBUS + "br2/nature.jpg", "day", "train",
        "a998508f89a13110343c07dcc987a9e31caae03d018ad4531e6b4c38a78d90b5"),
    "scribus-pizza.jpg": Photo("scribus-template", _SCRIBUS + "menu2/pizza.jpg", "indoor", "train",
        "2897692e5876d0ac7b82b7e2a5e2bc0d4060bc125af227702d6e09fc63edc84b"),
    "kodi-movie.jpg": Photo("kodi-data", _KODI + "movie.jpg", "indoor", "test",
        "be6bbf2999ca242f66b469f3ceedeb330a8dc909b5b475fc2d6cb88e446dfa85"),
    "kodi-music.jpg": Photo("kodi-data", _KODI + "music.jpg", "backlit", "train",
        "cef7cfca46caa314f37a952036b0b6173d26d2b96c544329aa761ba0f12a1fa7"),
    "opencv-chicky_512.png": Photo("opencv-doc", _OCV + "data/chicky_512.png", "indoor", "train",
        "4d2cf040de084fd3f34d5e3f96f1251faaa4787c1ac3b548fec5809a0d01854e"),
    "opencv-scenetext01.jpg": Photo("opencv-doc", _OCV + "text/scenetext01.jpg", "day", "train",
        "7f3041a7019ab4d33d2452bc757d8c4f38616bfde71431e12f7ec370d7b2018e"),
    "opencv-scenetext04.jpg": Photo("opencv-doc", _OCV + "text/scenetext04.jpg", "day", "train",
        "28e08d142a04f92f96d01ff2674f7804321841cba95bd968980cdc85ef0af6df"),
}
# fmt: on

TEST_SET = frozenset(n for n, p in PHOTOS.items() if p.split == "test")

# Lighting tags for the first set (data_fetch.PHOTOS), so every photo in the manifest has one.
FIRST_SET_TAGS: dict[str, str] = {
    **dict.fromkeys(
        [
            "mate-Aqua.jpg", "mate-Blinds.jpg", "mate-Dune.jpg", "mate-FreshFlower.jpg", "mate-Garden.jpg",
            "mate-GreenMeadow.jpg", "mate-LadyBird.jpg", "mate-RainDrops.jpg", "mate-TwoWings.jpg", "mate-Wood.jpg",
            "mate-Elephants.jpg", "opencv-aero1.jpg", "opencv-aero3.jpg", "opencv-baboon.jpg", "opencv-building.jpg",
            "opencv-butterfly.jpg", "opencv-graf1.png", "opencv-home.jpg", "opencv-leuvenA.jpg", "opencv-leuvenB.jpg",
            "opencv-squirrel_cls.jpg", "opencv-hfs000.jpg", "scipy-face.png",
        ],
        "day",
    ),
    **dict.fromkeys(
        [
            "opencv-aloeL.jpg", "opencv-apple.jpg", "opencv-board.jpg", "opencv-ela_original.jpg", "opencv-fruits.jpg",
            "opencv-orange.jpg", "opencv-rubberwhale1.png", "opencv-smarties.png", "opencv-plant.jpg",
            "skimage-astronaut.png", "skimage-chelsea.png", "skimage-coffee.png", "skimage-motorcycle_left.png",
        ],
        "indoor",
    ),
    **dict.fromkeys(["opencv-messi5.jpg", "skimage-rocket.jpg"], "night"),
    **dict.fromkeys(["mate-Storm.jpg", "mate-YellowFlower.jpg"], "low-key"),
}  # fmt: skip


def tag_of(name: str) -> str | None:
    """The lighting tag of a photo of either set (None for a name in neither)."""
    p = PHOTOS.get(name)
    return p.tag if p is not None else FIRST_SET_TAGS.get(name)


# --- reading a member ----------------------------------------------------------------------


def parse_rcc(buf: bytes) -> dict[str, bytes]:
    """Every file in a Qt binary resource bundle (rcc format 1-3), path -> bytes (zlib members inflated)."""
    if buf[:4] != b"qres" or len(buf) < 20:
        raise ValueError("not a Qt resource bundle (no 'qres' header)")
    version, tree, data, names = struct.unpack(">IIII", buf[4:20])
    node_size = 22 if version >= 2 else 14

    def name_at(off: int) -> str:
        (n,) = struct.unpack(">H", buf[names + off : names + off + 2])
        return buf[names + off + 6 : names + off + 6 + 2 * n].decode("utf-16-be")

    out: dict[str, bytes] = {}
    stack = [(0, "")]
    while stack:
        i, prefix = stack.pop()
        p = tree + i * node_size
        name_off, flags = struct.unpack(">IH", buf[p : p + 6])
        name = name_at(name_off) if i else ""
        if flags & 2:  # directory: child count, first child index
            count, first = struct.unpack(">II", buf[p + 6 : p + 14])
            stack.extend((c, f"{prefix}{name}/" if i else "") for c in range(first, first + count))
            continue
        (offset,) = struct.unpack(">I", buf[p + 10 : p + 14])
        (size,) = struct.unpack(">I", buf[data + offset : data + offset + 4])
        raw = buf[data + offset + 4 : data + offset + 4 + size]
        if flags & 1:  # zlib, after a 4-byte uncompressed length
            raw = zlib.decompress(raw[4:])
        elif flags & 4:
            raise ValueError(f"{prefix}{name}: zstd-compressed resources are not supported")
        out[prefix + name] = raw
    return out


@functools.lru_cache(maxsize=8)
def _rcc_files(path: str, mtime_ns: int) -> dict[str, bytes]:
    return parse_rcc(Path(path).read_bytes())


def read_member(root: str | Path, member: str) -> bytes:
    """The bytes of ``member`` under the unpacked package tree ``root`` (a file, or BUNDLE::INNER)."""
    outer, _, inner = member.partition(RCC_SEP)
    path = Path(root) / outer
    if not path.is_file():
        raise InputError(f"{outer} is missing from the unpacked package", "delete DEST/_downloads and rerun psenet-stream data")
    if not inner:
        return path.read_bytes()
    try:
        files = _rcc_files(str(path), path.stat().st_mtime_ns)
    except (ValueError, struct.error, zlib.error) as e:
        raise InputError(f"cannot read the resource bundle {outer}: {e}", "delete DEST/_downloads and rerun psenet-stream data") from e
    if inner not in files:
        raise InputError(f"{inner} is missing from {outer}", "delete DEST/_downloads and rerun psenet-stream data")
    return files[inner]
