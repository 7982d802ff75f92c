#define BOOST_TEST_MODULE knit_unit
#include <boost/test/unit_test.hpp>
