// GGUF support: the block types' reference dequantisers against the PyPI gguf package
// (tests/data/quant/, tests/tools/gen_quant_goldens.py), the GGUF reader on good and bad files,
// and GGUF models against the safetensors checkpoints they were converted from
// (tests/data/gguf/, tests/tools/gen_gguf_goldens.py).
#include <QtTest>
#include <QTemporaryDir>

#include <bit>
#include <cmath>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <functional>

#include "moescope/error.h"
#include "moescope/npy.h"
#include "moescope/tensor.h"

using namespace moescope;
namespace fs = std::filesystem;

namespace {

const fs::path kData = MOESCOPE_TEST_DATA;

std::vector<uint8_t> read_bytes(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  return std::vector<uint8_t>(std::istreambuf_iterator<char>(in), {});
}

}  // namespace

class GgufTest : public QObject {
  Q_OBJECT

private slots:
  void block_sizes() {
    QCOMPARE(dtype_block_elems(DType::Q4_K), int64_t(256));
    QCOMPARE(dtype_block_bytes(DType::Q4_K), size_t(144));
    QCOMPARE(dtype_bytes(DType::Q8_0, 64), size_t(68));
    QCOMPARE(dtype_bytes(DType::BF16, 3), size_t(6));
    QVERIFY(!dtype_is_quantized(DType::F16));
    QVERIFY(dtype_is_quantized(DType::MXFP4));
    QVERIFY_THROWS_EXCEPTION(Error, dtype_bytes(DType::Q4_0, 33));
    QVERIFY_THROWS_EXCEPTION(Error, dtype_size(DType::Q6_K));  // element-wise code refuses blocks
    TensorView t{DType::Q6_K, {4, 512}, nullptr};
    QCOMPARE(t.nbytes(), size_t(4 * 2 * 210));
  }

  // Every block of every golden, every value, bit for bit (NaN scales give NaN on both sides).
  void dequantize_matches_gguf_reference_data() {
    QTest::addColumn<QString>("type");
    for (const char* t : {"Q8_0", "Q4_0", "Q4_1", "Q5_0", "Q5_1", "Q2_K", "Q3_K", "Q4_K", "Q5_K", "Q6_K", "IQ4_NL",
                          "IQ4_XS", "MXFP4"})
      QTest::newRow(t) << QString(t);
  }
  void dequantize_matches_gguf_reference() {
    QFETCH(QString, type);
    const std::vector<DType> all = {DType::Q8_0, DType::Q4_0, DType::Q4_1, DType::Q5_0, DType::Q5_1,
                                    DType::Q2_K, DType::Q3_K, DType::Q4_K, DType::Q5_K, DType::Q6_K,
                                    DType::IQ4_NL, DType::IQ4_XS, DType::MXFP4};
    DType dt = DType::F32;
    for (DType d : all)
      if (type == dtype_name(d)) dt = d;
    QVERIFY(dtype_is_quantized(dt));
    const fs::path dir = kData / "quant";
    const std::vector<uint8_t> blocks = read_bytes(dir / (type.toStdString() + ".blocks"));
    const NpyArray ref = read_npy(dir / (type.toStdString() + ".npy"));
    QCOMPARE(ref.shape.size(), size_t(2));
    const int64_t n_blocks = ref.shape[0];
    QCOMPARE(ref.shape[1], dtype_block_elems(dt));
    QCOMPARE(blocks.size(), size_t(n_blocks) * dtype_block_bytes(dt));
    std::vector<float> got(ref.data.size());
    dequantize_blocks(dt, blocks.data(), got.data(), n_blocks);
    int finite = 0;
    for (size_t i = 0; i < got.size(); ++i) {
      const float a = got[i], b = ref.data[i];
      if (std::isnan(b)) {
        if (!std::isnan(a)) QFAIL(qPrintable(QString("%1 value %2: %3, reference NaN").arg(type).arg(i).arg(a)));
        continue;
      }
      ++finite;
      if (std::bit_cast<uint32_t>(a) != std::bit_cast<uint32_t>(b))
        QFAIL(qPrintable(QString("%1 block %2 element %3: %4, reference %5")
                             .arg(type).arg(i / size_t(ref.shape[1])).arg(i % size_t(ref.shape[1]))
                             .arg(double(a), 0, 'g', 9).arg(double(b), 0, 'g', 9)));
    }
    QVERIFY(finite > int(got.size()) / 2);
    // to_f32 takes the same path for whole blocks.
    std::vector<float> via(got.size());
    to_f32(dt, blocks.data(), via.data(), int64_t(via.size()));
    QVERIFY(std::memcmp(via.data(), got.data(), via.size() * 4) == 0);
  }
};

QTEST_GUILESS_MAIN(GgufTest)
#include "test_gguf.moc"
